"""verify: builds archcalc specs as PyTorch models and checks the numbers (a later issue)."""
