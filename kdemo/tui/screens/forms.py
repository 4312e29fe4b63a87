"""Forms for the actions that need input: simulate a comment, link an identity."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, RadioButton, RadioSet

from kdemo.errors import UsageError
from kdemo.flow.payloads import parse_repo, validate_login

__all__ = ["CommentForm", "LinkIdentityScreen", "SimulateCommentScreen", "parse_comment_form"]


@dataclass(frozen=True)
class CommentForm:
    """A comment to deliver as GitHub would."""

    repo: str
    number: int
    text: str
    pull_request: bool
    login: str


def parse_comment_form(
    repo: str, number: str, text: str, *, pull_request: bool, login: str
) -> CommentForm:
    """The form's fields checked, or a UsageError naming the field, the reason and the fix."""
    parse_repo(repo.strip(), option="repository")
    try:
        value = int(number.strip())
    except ValueError:
        value = 0
    if value < 1:
        raise UsageError(
            f"number {number!r} is not an issue number", "enter a positive whole number, e.g. 7"
        )
    if not text.strip():
        raise UsageError("the comment text is empty", "write e.g. $USDC:50$")
    validate_login(login.strip(), option="author")
    return CommentForm(repo.strip(), value, text, pull_request, login.strip())


class SimulateCommentScreen(ModalScreen[CommentForm | None]):
    """Repository, number, text, issue or pull request, author: then deliver."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def compose(self) -> ComposeResult:
        with Vertical(id="form-box", classes="form"):
            yield Label("Simulate a GitHub comment", classes="form-title")
            yield Input("octo/demo", placeholder="owner/repo", id="repo")
            yield Input("1", placeholder="issue or pull request number", id="number")
            yield Input("Funding this: $USDC:50$", placeholder="comment text", id="text")
            yield Input("octocat", placeholder="author (GitHub login)", id="login")
            with RadioSet(id="kind"):
                yield RadioButton("issue", value=True, id="kind-issue")
                yield RadioButton("pull request", id="kind-pr")
            yield Label("", id="form-error", classes="form-error")
            with Horizontal(classes="form-buttons"):
                yield Button("Deliver", variant="primary", id="submit")
                yield Button("Cancel", id="cancel")

    @on(Button.Pressed, "#submit")
    @on(Input.Submitted)
    def submit(self) -> None:
        try:
            form = parse_comment_form(
                self.query_one("#repo", Input).value,
                self.query_one("#number", Input).value,
                self.query_one("#text", Input).value,
                pull_request=self.query_one("#kind-pr", RadioButton).value,
                login=self.query_one("#login", Input).value,
            )
        except UsageError as exc:
            self.query_one("#form-error", Label).update(f"{exc.message} ({exc.hint})")
            return
        self.dismiss(form)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)


class LinkIdentityScreen(ModalScreen[str | None]):
    """The GitHub login to link the test account's wallet to."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def compose(self) -> ComposeResult:
        with Vertical(id="link-box", classes="form"):
            yield Label("Link the test wallet to a GitHub login", classes="form-title")
            yield Input("octocat", placeholder="GitHub login", id="login")
            yield Label("", id="form-error", classes="form-error")
            with Horizontal(classes="form-buttons"):
                yield Button("Link", variant="primary", id="submit")
                yield Button("Cancel", id="cancel")

    @on(Button.Pressed, "#submit")
    @on(Input.Submitted)
    def submit(self) -> None:
        login = self.query_one("#login", Input).value.strip()
        try:
            validate_login(login, option="login")
        except UsageError as exc:
            self.query_one("#form-error", Label).update(f"{exc.message} ({exc.hint})")
            return
        self.dismiss(login)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)
