"""The one user-facing error type: a message, where it happened, and what to do about it."""

from __future__ import annotations

from collections.abc import Sequence


class EnvmatError(Exception):
    """An error the user can act on; the CLI renders it and exits 1, never with a traceback.

    ``context`` lines say where (``in pylock.toml: packages[3].wheels[0].hashes``),
    ``hint`` says what to do next, ``details`` lists independent failures reported together.
    """

    exit_code = 1

    def __init__(
        self,
        message: str,
        *,
        context: Sequence[str] = (),
        hint: str | None = None,
        details: Sequence[str] = (),
    ) -> None:
        super().__init__(message)
        self.message = message
        self.context = tuple(context)
        self.hint = hint
        self.details = tuple(details)

    def render(self) -> str:
        lines = [f"error: {self.message}"]
        lines += [f"  {line}" for line in self.context]
        lines += [f"  - {line}" for line in self.details]
        if self.hint:
            lines.append(f"  hint: {self.hint}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.render()


class LockTimeoutError(EnvmatError):
    """Another envmat process held the venv past ``--lock-timeout``."""

    exit_code = 3


class UsageError(EnvmatError):
    """Options that contradict each other (exit 2, like argparse)."""

    exit_code = 2
