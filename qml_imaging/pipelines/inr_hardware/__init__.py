"""Re-evaluate a fitted QIREN on other quantum backends (shot noise, device noise, hardware)."""
