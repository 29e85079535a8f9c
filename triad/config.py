"""Where `triad login` keeps the server's URL and the token, and how the client finds them.

The token is a secret, so the file is created with mode 0600 in a directory made 0700: a fresh file is
written beside the old one and renamed over it, so it is never, even for a moment, readable by others
(a chmod after the write would leave that moment).
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

URL_ENV = "TRIAD_URL"
TOKEN_ENV = "TRIAD_TOKEN"  # noqa: S105  (the variable's name, not a secret)


class ConfigError(Exception):
    """No URL or token to use, or an unreadable config file (a usage error: exit 2)."""


@dataclass(frozen=True)
class Credentials:
    url: str
    token: str


def config_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "triad" / "config.json"


def read_config(path: Path | None = None) -> dict[str, str]:
    path = path or config_path()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read it: {exc.strerror}") from exc
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ConfigError(f"{path}: not JSON ({exc}); run `triad login URL` again") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a JSON object; run `triad login URL` again")
    return {k: v for k, v in data.items() if isinstance(k, str) and isinstance(v, str)}


def write_config(url: str, token: str, path: Path | None = None) -> Path:
    path = path or config_path()
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".config.", dir=path.parent)  # mkstemp creates it 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump({"url": url, "token": token}, out, indent=2)
            out.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def remove_config(path: Path | None = None) -> dict[str, str]:
    """Forget the stored credentials; returns what was stored ({} if nothing was)."""
    path = path or config_path()
    stored = read_config(path)
    path.unlink(missing_ok=True)
    return stored


def resolve(url: str | None = None, token: str | None = None) -> Credentials:
    """Arguments first, then TRIAD_URL / TRIAD_TOKEN, then the config file."""
    stored: dict[str, str] | None = None
    if not url:
        url = os.environ.get(URL_ENV)
    if not token:
        token = os.environ.get(TOKEN_ENV)
    if not url or not token:
        stored = read_config()
        url = url or stored.get("url")
        token = token or stored.get("token")
    if not url:
        raise ConfigError(f"no server: run `triad login URL`, or set {URL_ENV} and {TOKEN_ENV}")
    if not token:
        raise ConfigError(f"no token for {url}: run `triad login {url}`, or set {TOKEN_ENV}")
    return Credentials(url=normalise_url(url), token=token.strip())


def normalise_url(url: str) -> str:
    url = url.strip().rstrip("/")
    if url.endswith("/api/v1"):  # the API's own address given for the server's: the same server
        url = url[: -len("/api/v1")]
    if "://" not in url:
        raise ConfigError(f"{url!r}: expected a URL such as https://triad.example.com")
    scheme = url.partition("://")[0].lower()
    if scheme not in ("http", "https"):
        raise ConfigError(f"{url!r}: the scheme must be http or https")
    return url
