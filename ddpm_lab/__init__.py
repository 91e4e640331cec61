"""ddpm_lab: a reproducible laboratory for denoising diffusion models.

Ho, Jain & Abbeel (2020), "Denoising Diffusion Probabilistic Models", arXiv:2006.11239.
Equation numbers in this package refer to that paper.
"""
