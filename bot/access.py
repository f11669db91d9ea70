"""Who may do what, where: the chat allow-list (default deny) and each person's role."""

from __future__ import annotations

from bot.messages import Identity, IncomingMessage
from bot.roles import Role
from storage import Database, KeyValueRow, Settings, utcnow

ROLES_KEY = "roles"


class AccessPolicy:
    def __init__(self, settings: Settings, db: Database) -> None:
        self.settings = settings
        self.db = db
        self._configured: dict[str, Role] = {}
        for who in settings.analysts:
            self._configured[who] = Role.ANALYST
        for who in settings.officers:
            self._configured[who] = Role.OFFICER
        for who in settings.admins:
            self._configured[who] = Role.ADMIN

    def chat_allowed(self, message: IncomingMessage) -> bool:
        if message.platform in ("console", "cli"):
            return True
        if f"{message.platform}:{message.chat_id}" in self.settings.allowed_chats:
            return True
        # `slack:T0123` allows every channel of that workspace.
        if message.workspace and f"{message.platform}:{message.workspace}" in self.settings.allowed_chats:
            return True
        # A direct message is allowed for people who hold a configured role (an officer at home, say).
        return message.is_direct and self.role_of(message.user) > Role.VIEWER

    def _granted(self) -> dict[str, str]:
        with self.db.session() as session:
            row = session.get(KeyValueRow, ROLES_KEY)
            return {str(k): str(v) for k, v in (row.value if row else {}).items()}

    def role_of(self, user: Identity) -> Role:
        if user.platform in ("console", "cli"):
            return Role.ADMIN  # the local operator owns the machine
        granted = self._granted().get(user.key)
        if granted is not None:
            return Role[granted.upper()]
        return self._configured.get(user.key, Role.VIEWER)

    def grant(self, user_key: str, role: Role) -> None:
        with self.db.session() as session:
            row = session.get(KeyValueRow, ROLES_KEY) or KeyValueRow(key=ROLES_KEY, value={})
            value = dict(row.value)
            value[user_key] = role.title
            row.value = value
            row.updated_at = utcnow()
            session.add(row)
