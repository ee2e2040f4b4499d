"""Manual campaigns: `automation.campaigns.launch` and `automation.campaigns.cancel` are the Python API."""

from automation.campaigns.campaign import cancel, launch

__all__ = ["cancel", "launch"]
