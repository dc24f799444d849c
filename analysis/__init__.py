"""Training and evaluation on datasets (real or simulated); never imports the simulator's stages."""
