"""kuomian (扩面): the real-name registry of pension-insurance expansion targets."""

__version__ = "0.1.0"
