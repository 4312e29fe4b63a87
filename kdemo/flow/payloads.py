"""GitHub webhook payloads of GitHub's real shape, for headless deliveries.

Only the fields github-app reads, and the ones a reader of the payload expects to
see, are filled in; their names and nesting follow GitHub's `issue_comment` event.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import UTC, datetime
from typing import Any

from kdemo.errors import UsageError

__all__ = [
    "GITHUB_WEB",
    "comment_payload",
    "github_user_id",
    "issue_html_url",
    "new_comment_id",
    "parse_repo",
    "validate_login",
]

GITHUB_WEB = "https://github.com"

# GitHub logins: 1-39 letters, digits or single hyphens, not starting or ending with one.
_LOGIN = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){0,38}$")
# Owner like a login; repository names also allow dots and underscores.
_REPO_NAME = re.compile(r"^[A-Za-z0-9._-]{1,100}$")


def validate_login(login: str, *, option: str = "--user") -> str:
    """The login unchanged, or a UsageError naming the option and GitHub's rule."""
    if not _LOGIN.match(login):
        raise UsageError(
            f"{option} {login!r} is not a GitHub login",
            "use 1-39 letters, digits or single hyphens, e.g. octocat",
        )
    return login


def parse_repo(repo: str, *, option: str = "--repo") -> tuple[str, str]:
    """Split OWNER/REPO, or raise a UsageError naming the option."""
    owner, sep, name = repo.partition("/")
    if not sep or not _LOGIN.match(owner) or not _REPO_NAME.match(name) or name in {".", ".."}:
        raise UsageError(f"{option} {repo!r} is not OWNER/REPO", "e.g. --repo octocat/hello-world")
    return owner, name


def github_user_id(login: str) -> int:
    """A stable numeric GitHub id for a login: the first 6 bytes of sha256(lower-case login).

    GitHub logins are case-insensitive, so `Alice` and `alice` get the same id; 48 bits
    keep it a safe integer in JavaScript too.
    """
    digest = hashlib.sha256(login.lower().encode()).digest()
    return int.from_bytes(digest[:6], "big") or 1


def new_comment_id() -> int:
    """A fresh comment id, so every simulated comment is a new bounty source."""
    # Random within 2**50 above GitHub's current range: never reused, still JS-safe.
    return 10**10 + secrets.randbelow(2**50)


def issue_html_url(repo: str, number: int, *, pull_request: bool) -> str:
    kind = "pull" if pull_request else "issues"
    return f"{GITHUB_WEB}/{repo}/{kind}/{number}"


def _user(login: str, user_id: int) -> dict[str, Any]:
    return {
        "login": login,
        "id": user_id,
        "node_id": f"U_kdemo{user_id}",
        "html_url": f"{GITHUB_WEB}/{login}",
        "type": "User",
        "site_admin": False,
    }


def comment_payload(
    body: str,
    *,
    repo: str,
    number: int,
    login: str,
    user_id: int | None = None,
    pull_request: bool = False,
    comment_id: int | None = None,
) -> dict[str, Any]:
    """An `issue_comment` webhook payload with action `created`, as GitHub sends it."""
    owner, name = parse_repo(repo)
    validate_login(login)
    if number < 1:
        raise UsageError(f"--number {number} is not an issue number", "use a number >= 1")
    if user_id is not None and user_id < 1:
        raise UsageError(f"--user-id {user_id} is not a GitHub id", "use a positive integer")
    uid = user_id if user_id is not None else github_user_id(login)
    cid = comment_id if comment_id is not None else new_comment_id()
    now = datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    owner_id = github_user_id(owner)
    repository = {
        "id": github_user_id(repo),
        "name": name,
        "full_name": repo,
        "private": False,
        "owner": _user(owner, owner_id),
        "html_url": f"{GITHUB_WEB}/{repo}",
        "url": f"https://api.github.com/repos/{repo}",
    }
    html = issue_html_url(repo, number, pull_request=pull_request)
    api_issue = f"https://api.github.com/repos/{repo}/issues/{number}"
    issue: dict[str, Any] = {
        "id": github_user_id(f"{repo}#{number}"),
        "number": number,
        "title": f"Issue {number}" if not pull_request else f"Pull request {number}",
        "state": "open",
        "html_url": html,
        "url": api_issue,
        "user": _user(login, uid),
        "created_at": now,
        "updated_at": now,
    }
    if pull_request:
        issue["pull_request"] = {
            "url": f"https://api.github.com/repos/{repo}/pulls/{number}",
            "html_url": html,
            "diff_url": f"{html}.diff",
            "patch_url": f"{html}.patch",
        }
    comment = {
        "id": cid,
        "node_id": f"IC_kdemo{cid}",
        "html_url": f"{html}#issuecomment-{cid}",
        "issue_url": api_issue,
        "url": f"https://api.github.com/repos/{repo}/issues/comments/{cid}",
        "body": body,
        "user": _user(login, uid),
        "author_association": "CONTRIBUTOR",
        "created_at": now,
        "updated_at": now,
    }
    return {
        "action": "created",
        "issue": issue,
        "comment": comment,
        "repository": repository,
        "sender": _user(login, uid),
    }
