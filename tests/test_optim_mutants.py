"""Resuming with another ``--epochs`` (training/optim.py ``replan_schedule``): the learning rate at each
epoch against the cosine worked out by hand, for a run past its warm-up, one still in it, a resume in
the middle of an epoch, and the cases that must carry on unchanged."""

from __future__ import annotations

import logging
import math

import pytest
import torch

from microaunet_cli.config.settings import ScheduleSettings
from microaunet_cli.training.optim import CosineFactor, build_scheduler, replan_schedule

BASE, ETA_MIN = 1.0, 0.2
FLOOR = ETA_MIN / BASE


def _cos(t: float, span: float, top: float, floor: float = FLOOR) -> float:
    return floor + (top - floor) * 0.5 * (1 + math.cos(math.pi * t / span))


def _scheduler(cfg: ScheduleSettings, epochs: int, epochs_done: int, lrs=(BASE,)):
    params = [torch.nn.Parameter(torch.zeros(1)) for _ in lrs]
    opt = torch.optim.SGD([{"params": [p], "lr": lr} for p, lr in zip(params, lrs)], lr=lrs[0])
    sched = build_scheduler(opt, cfg, epochs)
    for _ in range(epochs_done):
        opt.step()
        sched.step()
    return opt, sched


def _lr_at(sched, epoch: int) -> float:
    return sched.base_lrs[0] * sched.lr_lambdas[0](epoch)


def test_a_longer_run_falls_from_the_last_trained_epoch_to_the_floor_at_the_new_end():
    cfg = ScheduleSettings(eta_min=ETA_MIN)
    opt, sched = _scheduler(cfg, epochs=10, epochs_done=4)
    replan_schedule(sched, cfg, old_epochs=10, epochs=20, epochs_done=4, mid_epoch=False)
    kept = _cos(3, 10, 1.0)  # epoch 3 (the last trained) of the 10-epoch cosine
    assert _lr_at(sched, 3) == pytest.approx(kept)  # that lr is kept...
    # ...and from it a cosine over 20 - 3 = 17 epochs down to the floor
    for epoch in (4, 10, 19):
        assert _lr_at(sched, epoch) == pytest.approx(_cos(epoch - 3, 17, kept)), epoch
    assert _lr_at(sched, 20) == pytest.approx(FLOOR) and _lr_at(sched, 25) == pytest.approx(FLOOR)
    # the optimiser holds the lr of the epoch about to run (4), not the old plan's
    assert opt.param_groups[0]["lr"] == pytest.approx(_cos(1, 17, kept))
    assert sched.get_last_lr() == [opt.param_groups[0]["lr"]]


def test_a_shorter_run_falls_faster():
    cfg = ScheduleSettings(eta_min=ETA_MIN)
    opt, sched = _scheduler(cfg, epochs=20, epochs_done=6)
    replan_schedule(sched, cfg, old_epochs=20, epochs=10, epochs_done=6, mid_epoch=False)
    kept = _cos(5, 20, 1.0)
    assert opt.param_groups[0]["lr"] == pytest.approx(_cos(1, 5, kept))
    assert _lr_at(sched, 10) == pytest.approx(FLOOR)


def test_a_resume_mid_epoch_keeps_the_lr_of_the_epoch_in_progress():
    cfg = ScheduleSettings(eta_min=ETA_MIN)
    opt, sched = _scheduler(cfg, epochs=10, epochs_done=4)
    replan_schedule(sched, cfg, old_epochs=10, epochs=20, epochs_done=4, mid_epoch=True)
    kept = _cos(4, 10, 1.0)  # epoch 4 was begun: its lr stays
    assert opt.param_groups[0]["lr"] == pytest.approx(kept)
    assert _lr_at(sched, 5) == pytest.approx(_cos(1, 16, kept))


def test_a_run_still_in_warm_up_takes_the_plan_of_the_new_length():
    cfg = ScheduleSettings(eta_min=ETA_MIN, warmup_epochs=3)
    opt, sched = _scheduler(cfg, epochs=10, epochs_done=2)
    replan_schedule(sched, cfg, old_epochs=10, epochs=20, epochs_done=2, mid_epoch=False)
    fresh = build_scheduler(torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=BASE), cfg, 20)
    for epoch in range(25):
        assert _lr_at(sched, epoch) == pytest.approx(_lr_at(fresh, epoch)), epoch
    # by hand: warm-up (e + 1)/4, then a cosine over 20 - 3 = 17 epochs
    assert _lr_at(sched, 2) == pytest.approx(3 / 4)
    assert _lr_at(sched, 10) == pytest.approx(_cos(7, 17, 1.0))
    assert opt.param_groups[0]["lr"] == pytest.approx(3 / 4)


def test_the_last_warm_up_epoch_counts_as_warm_up_and_the_first_after_it_does_not():
    cfg = ScheduleSettings(eta_min=ETA_MIN, warmup_epochs=3)
    _, inside = _scheduler(cfg, epochs=10, epochs_done=3)
    replan_schedule(inside, cfg, old_epochs=10, epochs=20, epochs_done=3, mid_epoch=False)  # anchor 2
    assert inside.lr_lambdas[0].from_epoch is None and inside.lr_lambdas[0].t_max == 17
    _, after = _scheduler(cfg, epochs=10, epochs_done=4)
    replan_schedule(after, cfg, old_epochs=10, epochs=20, epochs_done=4, mid_epoch=False)  # anchor 3
    assert after.lr_lambdas[0].from_epoch == 3 and after.lr_lambdas[0].end_epoch == 20


def test_a_run_that_ends_in_warm_up_has_a_cosine_of_one_epoch():
    cfg = ScheduleSettings(eta_min=ETA_MIN, warmup_epochs=3)
    _, sched = _scheduler(cfg, epochs=10, epochs_done=1)
    replan_schedule(sched, cfg, old_epochs=10, epochs=2, epochs_done=1, mid_epoch=False)
    assert sched.lr_lambdas[0].t_max == 1


def test_every_parameter_group_follows_its_own_base_lr():
    cfg = ScheduleSettings(eta_min=ETA_MIN)
    opt, sched = _scheduler(cfg, epochs=10, epochs_done=4, lrs=(BASE, 0.5))
    replan_schedule(sched, cfg, old_epochs=10, epochs=20, epochs_done=4, mid_epoch=False)
    first, second = (g["lr"] for g in opt.param_groups)
    assert second == pytest.approx(0.5 * first / BASE)
    assert sched.get_last_lr() == [first, second]


@pytest.mark.parametrize(
    "cfg, old, new",
    [
        (ScheduleSettings(eta_min=ETA_MIN), 10, 10),  # --epochs unchanged
        (ScheduleSettings(eta_min=ETA_MIN, t_max=4), 10, 20),  # a fixed period does not depend on it
        (ScheduleSettings(name="constant"), 10, 20),  # nor does a constant lr
    ],
)
def test_what_does_not_depend_on_the_epoch_count_carries_on(cfg, old, new, caplog):
    opt, sched = _scheduler(cfg, epochs=old, epochs_done=4)
    before = [_lr_at(sched, e) for e in range(25)], opt.param_groups[0]["lr"]
    with caplog.at_level(logging.INFO):
        replan_schedule(sched, cfg, old_epochs=old, epochs=new, epochs_done=4, mid_epoch=False)
    assert ([_lr_at(sched, e) for e in range(25)], opt.param_groups[0]["lr"]) == before
    assert "--epochs changed" not in caplog.text


def test_the_log_says_from_which_lr_and_epoch_to_which_floor(caplog):
    cfg = ScheduleSettings(eta_min=ETA_MIN)
    _, sched = _scheduler(cfg, epochs=10, epochs_done=4)
    with caplog.at_level(logging.INFO, logger="microaunet_cli.training.optim"):
        replan_schedule(sched, cfg, old_epochs=10, epochs=20, epochs_done=4, mid_epoch=False)
    kept = _cos(3, 10, 1.0)
    assert [r.getMessage() for r in caplog.records] == [
        f"--epochs changed from 10 to 20 on resume: the lr falls from {kept:.3g} (epoch 4) to 0.2 at the end"
    ]


def test_the_log_after_one_epoch_names_the_first(caplog):
    cfg = ScheduleSettings(eta_min=ETA_MIN)
    _, sched = _scheduler(cfg, epochs=10, epochs_done=1)
    with caplog.at_level(logging.INFO, logger="microaunet_cli.training.optim"):
        replan_schedule(sched, cfg, old_epochs=10, epochs=20, epochs_done=1, mid_epoch=False)
    assert [r.getMessage() for r in caplog.records] == [
        "--epochs changed from 10 to 20 on resume: the lr falls from 1 (epoch 1) to 0.2 at the end"
    ]


def test_a_second_resume_keeps_the_continuation():
    cfg = ScheduleSettings(eta_min=ETA_MIN)
    _, sched = _scheduler(cfg, epochs=10, epochs_done=4)
    replan_schedule(sched, cfg, old_epochs=10, epochs=20, epochs_done=4, mid_epoch=False)
    state = sched.state_dict()
    _, again = _scheduler(cfg, epochs=20, epochs_done=0)
    again.load_state_dict(state)
    assert [_lr_at(again, e) for e in range(22)] == [_lr_at(sched, e) for e in range(22)]


def test_cosine_factor_by_hand():
    f = CosineFactor(base_lr=2.0, eta_min=0.5, t_max=4, warmup=2)
    assert f.floor == 0.25
    assert [f(0), f(1)] == pytest.approx([1 / 3, 2 / 3])
    assert [f(2), f(4), f(6)] == pytest.approx([1.0, _cos(2, 4, 1.0, 0.25), 1.0])  # restarts every t_max
    f.continue_to(3, 7)
    assert f(3) == pytest.approx(_cos(1, 4, 1.0, 0.25))
    assert f(5) == pytest.approx(_cos(2, 4, f(3), 0.25)) and f(9) == pytest.approx(0.25)
    assert f(2) == pytest.approx(1.0)  # before the continuation the plan is unchanged
    same_end = CosineFactor(base_lr=1.0, eta_min=0.0, t_max=4, warmup=0)
    same_end.continue_to(2, 2)  # no epoch left: a span of one epoch, not a division by zero
    assert same_end(2) == pytest.approx(same_end.from_factor) and same_end(3) == pytest.approx(0.0)
