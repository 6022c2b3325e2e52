"""Data: read Kvasir-SEG / CVC-ClinicDB as distributed, prepare fixed-size arrays, load them."""
