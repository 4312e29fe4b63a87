"""Modal screens: help and the forms behind the actions."""

from kdemo.tui.screens.forms import CommentForm, LinkIdentityScreen, SimulateCommentScreen
from kdemo.tui.screens.help import HelpScreen

__all__ = ["CommentForm", "HelpScreen", "LinkIdentityScreen", "SimulateCommentScreen"]
