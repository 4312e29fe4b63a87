"""The headless twins of the human steps: simulate-comment, sign, link-identity."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape

from kdemo.cli.session import Output, OutputOption, Session, print_json, session_of
from kdemo.errors import KdemoError
from kdemo.flow import LINK_TIMEOUT

# The flow modules load httpx and eth_account (a second or more): each command imports
# what it uses when it runs, so `kdemo --help` and the other commands start without them.
if TYPE_CHECKING:
    from kdemo.flow.link import LinkStatus
    from kdemo.flow.wallet import Wallet
    from kdemo.flow.webhook import Rejected

__all__ = [
    "link_identity_command",
    "rejection_warnings",
    "sign_command",
    "simulate_comment_command",
    "wallet_for",
]

KEY_ENV = "KDEMO_SIGNER_KEY"

KeyOption = Annotated[
    str | None,
    typer.Option(
        "--key",
        envvar=KEY_ENV,
        show_envvar=True,
        help="Private key (hex) to sign with. Default: the well-known public test account.",
    ),
]
UserIdOption = Annotated[
    int | None,
    typer.Option(
        "--user-id", min=1, help="The author's numeric GitHub id. Default: derived from the login."
    ),
]


def wallet_for(session: Session, key: str | None) -> Wallet:
    """The wallet of `--key` / KDEMO_SIGNER_KEY, or the public test account (said on stderr)."""
    from kdemo.flow.wallet import TEST_ACCOUNT_ADDRESS, Wallet

    if key:
        source = "--key" if os.environ.get(KEY_ENV) != key else KEY_ENV
        return Wallet.from_key(key, source=source)
    session.say(
        f"[yellow]note:[/yellow] no --key or {KEY_ENV}: signing with the well-known public test "
        f"account {TEST_ACCOUNT_ADDRESS} (anyone can sign as it)"
    )
    return Wallet.test_account()


def simulate_comment_command(
    ctx: typer.Context,
    body: Annotated[str, typer.Argument(help="The comment text, e.g. '$USDC:50$'.")],
    *,
    repo: Annotated[str, typer.Option("--repo", help="OWNER/REPO the comment is on.")],
    number: Annotated[int, typer.Option("--number", min=1, help="Issue or pull request number.")],
    pr: Annotated[bool, typer.Option("--pr", help="Comment on a pull request.")] = False,
    user: Annotated[str, typer.Option("--user", help="GitHub login of the author.")] = "octocat",
    user_id: UserIdOption = None,
    output: OutputOption = Output.text,
) -> None:
    """Deliver a signed [bold]issue_comment[/bold] webhook as GitHub would; print signing URLs."""
    from kdemo.flow.http import new_client
    from kdemo.flow.link import wait_for_link
    from kdemo.flow.webhook import simulate_comment

    session = session_of(ctx)
    rt = session.running_runtime()
    urls = rt.public_urls()
    with new_client() as client:
        result = simulate_comment(
            client,
            urls["github-app"],
            rt.webhook_secret(),
            body,
            repo=repo,
            number=number,
            login=user,
            user_id=user_id,
            pull_request=pr,
        )
        links: list[LinkStatus] = []
        if result.link_codes:
            with session.err.status("waiting for identity to pair the link code", spinner="dots"):
                links = [
                    wait_for_link(client, urls["frontend"], code, timeout=LINK_TIMEOUT)
                    for code in result.link_codes
                ]
    if result.duplicate:
        session.say("[dim]github-app had seen this delivery already (duplicate)[/dim]")
    if result.matched:  # when nothing matched, the error line carries the reasons instead
        for warning in rejection_warnings(result.rejected):
            session.warn(warning)
    if output is Output.json:
        print_json(session, {**result.to_json(), "links": [s.to_json() for s in links]})
    else:
        for url in result.signing_urls:
            session.out.print(url, markup=False)
        for status in links:
            session.out.print(f"{status.code}: {escape(status.describe())}")
    if not result.matched:
        raise KdemoError(
            f"nothing matched: {result.nothing_matched_reason()}",
            "a bounty reads $DENOMINATION:AMOUNT$, e.g. '$USDC:50$' (quote it for the shell)",
        )
    _raise_unlinked(links)


def rejection_warnings(rejected: Iterable[Rejected]) -> list[str]:
    """One warning per reason, however many patterns github-app rejected for it.

    A comment repeating one bad pattern gives one line that says how many times;
    several patterns rejected for the same reason are named together (the first three,
    then how many more).
    """
    by_reason: dict[str, Counter[str]] = {}
    for r in rejected:
        by_reason.setdefault(r.reason, Counter())[r.text] += 1
    warnings = []
    for reason, texts in by_reason.items():
        total = sum(texts.values())
        if len(texts) == 1:
            [text] = texts
            times = f" (\N{MULTIPLICATION SIGN}{total})" if total > 1 else ""
            warnings.append(f"github-app rejected {text!r}: {reason}{times}")
            continue
        named = ", ".join(repr(t) for t in list(texts)[:3])
        more = f" and {len(texts) - 3} more" if len(texts) > 3 else ""
        warnings.append(f"github-app rejected {total} patterns ({named}{more}): {reason}")
    return warnings


def _raise_unlinked(links: list[LinkStatus], timeout: float = LINK_TIMEOUT) -> None:
    for status in links:
        if status.state == "refused":
            raise KdemoError(f"link refused: {status.reason or 'no reason given'}")
        if status.state == "pending":
            raise KdemoError(
                f"identity gave no verdict on {status.code} within {timeout:g} s",
                "see `kdemo logs identity` and `kdemo dlq list`",
            )


def sign_command(
    ctx: typer.Context,
    url: Annotated[str, typer.Argument(help="The signing URL simulate-comment printed.")],
    *,
    key: KeyOption = None,
    output: OutputOption = Output.text,
) -> None:
    """Sign the intent behind a signing URL, like a browser wallet; print where it leads."""
    from kdemo.flow.http import new_client
    from kdemo.flow.wallet import parse_signing_url, sign_intent

    session = session_of(ctx)
    parse_signing_url(url)  # a bad URL fails before anything else is said
    wallet = wallet_for(session, key)
    with new_client() as client:
        result = sign_intent(client, url, wallet)
    if output is Output.json:
        print_json(session, result.to_json())
        return
    session.say(_signed_line(result.status, result.address))
    session.out.print(result.redirect, markup=False)


def _signed_line(status: str, address: str) -> str:
    """What frontend made of the signature, in a sentence."""
    if status == "already_signed":
        return f"already signed by {address}: nothing new recorded"
    if status == "offer":
        return f"signed by {address}, recorded as an offer: another wallet signed this intent first"
    return f"signed by {address}"


def link_identity_command(
    ctx: typer.Context,
    *,
    github: Annotated[
        str, typer.Option("--github", help="The GitHub login to link the wallet to.")
    ],
    key: KeyOption = None,
    user_id: UserIdOption = None,
    repo: Annotated[
        str, typer.Option("--repo", help="OWNER/REPO to post the $link:<code>$ comment on.")
    ] = "kdemo/identity",
    number: Annotated[
        int, typer.Option("--number", min=1, help="Issue to post the comment on.")
    ] = 1,
    timeout: Annotated[
        float, typer.Option("--timeout", min=1, help="Seconds to wait for identity's verdict.")
    ] = LINK_TIMEOUT,
    output: OutputOption = Output.text,
) -> None:
    """Link a wallet to a GitHub account: sign the SIWE message, comment the code, wait."""
    from kdemo.flow.http import new_client
    from kdemo.flow.link import link_identity

    session = session_of(ctx)
    wallet = wallet_for(session, key)
    rt = session.running_runtime()
    urls = rt.public_urls()
    with (
        new_client() as client,
        session.err.status(f"linking {wallet.address} to github:{escape(github)}", spinner="dots"),
    ):
        outcome = link_identity(
            client,
            frontend_url=urls["frontend"],
            github_app_url=urls["github-app"],
            webhook_secret=rt.webhook_secret(),
            wallet=wallet,
            login=github,
            user_id=user_id,
            repo=repo,
            number=number,
            timeout=timeout,
        )
    data: dict[str, Any] = outcome.to_json()
    if output is Output.json:
        print_json(session, data)
    else:
        session.out.print(escape(outcome.status.describe()))
    _raise_unlinked([outcome.status], timeout)
