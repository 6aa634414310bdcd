"""mailsift: an email threat-protection gateway."""

__version__ = "0.1.0"
