"""The console chat: one person plays learner, mentor and admin at a terminal.

Choices show as numbered options; typing the number sends the choice of the last reply shown to
you (a reply without choices leaves nothing to press, so a number never reaches an older reply's
buttons). Attachments (the stats chart, CSV exports, `/mydata`, a booking's `.ics`, lesson
files) are written to a folder, `console/` inside `storage.data_dir` unless the caller names
one, and the reply says where each one is, so they can be opened as they are. `/as NAME [ROLE]`
switches who you are (ROLE: learner, mentor or admin). Granting roles here is deliberate: the
console runs on the machine that owns the database, so whoever types is trusted. Notices for
other console users are printed too, marked with their name, and their choices can be picked
after switching to them.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from bot.app import Marketplace
from bot.core.i18n import Msg, _
from bot.core.replies import Attachment, RenderedChoice, Reply
from bot.core.roles import ROLES, make_admin, make_mentor
from bot.core.users import Incoming, resolve_user
from storage.models import Identity

PLATFORM = "console"


class ConsoleChat:
    def __init__(
        self,
        app: Marketplace,
        write: Callable[[str], None],
        name: str = "learner",
        files_dir: Path | None = None,
    ):
        self.app = app
        self.write = write
        self.name = name
        self.files_dir = files_dir or Path(app.config.storage.data_dir).expanduser() / PLATFORM
        self.last_choices: dict[str, tuple[RenderedChoice, ...]] = {}
        app.notifier.register(PLATFORM, self._deliver)

    def _t(self, text: Msg) -> str:
        return text.render(self.app.config.console.language, self.app.config.console.timezone)

    async def become(self, name: str, role: str | None = None) -> None:
        if role is not None and role not in ROLES:
            self.write(
                self._t(
                    _(
                        "Unknown role '{value}'. Choose one of: {choices}.",
                        value=role,
                        choices=", ".join(ROLES),
                    )
                )
            )
            return
        self.name = name
        now = self.app.clock.now()
        async with self.app.new_uow() as uow:
            user, _roles = await resolve_user(uow, self.app.config, self._incoming(""), now)
            if role == "admin":
                await make_admin(uow, user.id, PLATFORM, name)
            elif role == "mentor":
                await make_mentor(uow, user.id, user.language, now)
            await uow.commit()
        self.write(self._t(_("You are now {name}.", name=name)))
        await self.app.notifier.deliver_pending()

    def _incoming(self, text: str) -> Incoming:
        return Incoming(PLATFORM, self.name, self.name, text)

    async def handle_line(self, line: str) -> None:
        line = line.strip()
        if not line:
            return
        if line.split()[0].lower() == "/as":
            parts = line.split()
            if len(parts) < 2:
                self.write(self._t(_("Usage: /as NAME [learner|mentor|admin]")))
                return
            await self.become(parts[1], parts[2].lower() if len(parts) > 2 else None)
            return
        if line.isdigit():
            choices = self.last_choices.get(self.name, ())
            index = int(line) - 1
            if not 0 <= index < len(choices):
                self.write(self._t(_("There is no option {n} here.", n=line)))
                return
            if choices[index].url:
                self.write(
                    self._t(_("Open this link in a browser: {url}", url=choices[index].payload))
                )
                return
            line = choices[index].payload
        for reply in await self.app.handle(self._incoming(line)):
            self._show(self.name, reply)

    async def _deliver(self, identity: Identity, reply: Reply) -> None:
        self._show(identity.external_id, reply, notice=True)

    def _show(self, name: str, reply: Reply, notice: bool = False) -> None:
        lines = []
        if notice:
            lines.append(self._t(_("── message for {name} ──", name=name)))
        lines.append(reply.text)
        for i, choice in enumerate(reply.choices, start=1):
            link = f" → {choice.payload}" if choice.url else ""
            lines.append(f"  [{i}] {choice.label}{link}")
        for attachment in reply.attachments:
            path = self._save(name, attachment)
            lines.append(self._t(_("Attachment {name} saved to {path}", name=path.name, path=path)))
        self.last_choices[name] = reply.choices
        self.write("\n".join(lines))

    def _save(self, name: str, attachment: Attachment) -> Path:
        """Write an attachment under the reader's folder; an earlier file of the same name is
        kept and the new one numbered, so every reply's file stays where it said."""
        folder = self.files_dir / "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / Path(attachment.filename).name
        n = 1
        while target.exists():
            n += 1
            stem, suffix = Path(attachment.filename).stem, Path(attachment.filename).suffix
            target = folder / f"{stem}-{n}{suffix}"
        target.write_bytes(attachment.data)
        return target.resolve()
