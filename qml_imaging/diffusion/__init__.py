"""Denoising diffusion: noise schedules, the eps-prediction objective, DDPM and DDIM samplers."""
