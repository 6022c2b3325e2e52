"""Running trained networks on images: preprocessing, batched prediction."""
