"""The Telegram front end (python-telegram-bot): long polling by default, or a webhook whose secret token is checked
when `TELEGRAM_WEBHOOK_URL` is set. Commands reach `Bot.handle` through `CommandHandler`s; replies go out as HTML
split at 4096 characters, with inline keyboards whose callback data is a stored button id, pictures as photos and
other files as documents. `AIORateLimiter` keeps within Telegram's flood limits and retries after a 429.

Alerts go out through `send` and `edit`, whose failures `delivery_error` sorts into our outcomes. A bot cannot read a
chat's history on Telegram, so this backend has no `history`: an interrupted alert is re-sent flagged."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import socket
from collections.abc import Sequence
from datetime import timedelta

import httpx
from telegram import (
    BotCommand,
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputFile,
    LinkPreviewOptions,
    Message,
    ReplyParameters,
    Update,
)
from telegram.constants import ChatType, ParseMode
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Conflict,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
)
from telegram.ext import (
    AIORateLimiter,
    Application,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    Defaults,
    MessageHandler,
    filters,
)

from bot.backends.base import PostHistory, PostMarker, serve_until_signalled
from bot.backends.errors import DeliveryError, Outcome, RateLimited, raised_from
from bot.core import Bot
from bot.messages import Action, ErrorText, Identity, IncomingMessage, Reply
from bot.render.telegram_html import MESSAGE_LIMIT, caption_html, esc, render_html
from bot.roles import Role
from bot.web.server import HttpLimits
from bot.web.telegram_webhook import TelegramWebhook
from storage import Settings

log = logging.getLogger(__name__)

CALLBACK_PREFIX = "cs:"
PHOTO_TYPES = frozenset({"image/png", "image/jpeg"})
PHOTO_MAX_BYTES = 10 * 1024 * 1024
ALLOWED_UPDATES = [Update.MESSAGE, Update.CALLBACK_QUERY]


class TelegramSetupError(ValueError):
    """The Telegram configuration cannot work (the message says which variable to set)."""


REFUSALS = (BadRequest, Forbidden, InvalidToken, ChatMigrated, Conflict)
"""The Bot API said no (a 4xx: bad request, forbidden, chat not found …): sending again will not help."""
NEVER_LEFT = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.UnsupportedProtocol,
    ConnectionRefusedError,
    socket.gaierror,
)
"""Failures (anywhere in the `raise … from` chain) that say the request never left: no connection was made (refused,
DNS, connect time-out) or none was free in the pool. The message is certainly not in the chat."""
NETWORK = (NetworkError, httpx.HTTPError, OSError, TimeoutError)


def delivery_error(exc: BaseException) -> RateLimited | DeliveryError:
    """Sort a failure of python-telegram-bot: flood control → `RateLimited`; a refusal → refused; a network failure
    before the request left → not sent; anything whose outcome is unknown (a read time-out, the connection lost after
    sending, a 5xx — PTB raises `NetworkError` for those, and for any httpx error, from it) → in doubt; any other
    failure → refused."""
    if isinstance(exc, RetryAfter):  # seconds, or a timedelta in newer versions
        retry_after = exc.retry_after
        seconds = retry_after.total_seconds() if isinstance(retry_after, timedelta) else float(retry_after)
        return RateLimited(seconds, str(exc))
    text = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, REFUSALS):
        return DeliveryError(text, Outcome.REFUSED)
    if raised_from(exc, NEVER_LEFT):
        return DeliveryError(text, Outcome.NOT_SENT)
    if isinstance(exc, NETWORK):
        return DeliveryError(text, Outcome.IN_DOUBT)
    return DeliveryError(text, Outcome.REFUSED)


class TelegramBackend:
    platform = "telegram"
    history: PostHistory | None = None  # the Bot API gives a bot no way to read a chat's history

    def __init__(self, bot: Bot, settings: Settings, *, poll_timeout: int = 10) -> None:
        if not settings.telegram_bot_token:
            raise TelegramSetupError("TELEGRAM_BOT_TOKEN is not set.")
        if settings.telegram_webhook_url and not settings.telegram_webhook_secret:
            raise TelegramSetupError("TELEGRAM_WEBHOOK_URL needs TELEGRAM_WEBHOOK_SECRET to check requests.")
        self.bot = bot
        self.settings = settings
        self.poll_timeout = poll_timeout
        self.application = (
            Application.builder()
            .token(settings.telegram_bot_token)
            .base_url(settings.telegram_base_url)
            .base_file_url(settings.telegram_base_file_url)
            .defaults(Defaults(parse_mode=ParseMode.HTML, link_preview_options=LinkPreviewOptions(is_disabled=True)))
            # AIORateLimiter re-sends only after a 429 (RetryAfter: nothing was posted); HTTPXRequest never retries
            # (httpx's transport has retries=0), so after a time-out or a lost connection the notifier decides.
            .rate_limiter(AIORateLimiter(max_retries=3))
            .concurrent_updates(True)
            .build()
        )
        self._stopping = asyncio.Event()
        self._webhook: TelegramWebhook | None = None
        self._add_handlers()

    def _add_handlers(self) -> None:
        registry = self.bot.registry
        names = sorted(set(registry.commands) | set(registry.aliases))
        new_messages = filters.UpdateType.MESSAGE  # an edited message does not run its command again
        self.application.add_handler(CommandHandler(names, self._on_command, filters=new_messages))
        self.application.add_handler(MessageHandler(filters.COMMAND & new_messages, self._on_other_command))
        self.application.add_handler(MessageHandler(filters.TEXT & ~filters.COMMAND & new_messages, self._on_text))
        self.application.add_handler(CallbackQueryHandler(self._on_button, pattern=f"^{CALLBACK_PREFIX}"))
        self.application.add_error_handler(self._on_error)

    # --- lifecycle -------------------------------------------------------------------------------------------

    @property
    def webhook_mode(self) -> bool:
        return bool(self.settings.telegram_webhook_url)

    async def start(self) -> None:
        """Load the caches, connect (getMe), then poll or open the webhook server, and start handling updates."""
        await self.bot.warm_up()
        try:
            await self.application.initialize()
        except InvalidToken as exc:
            raise TelegramSetupError("the Bot API rejected TELEGRAM_BOT_TOKEN.") from exc
        except NetworkError as exc:
            raise TelegramSetupError(f"cannot reach the Bot API at {self.settings.telegram_base_url}: {exc}") from exc
        await self._publish_commands()
        updater = self.application.updater
        assert updater is not None
        if self.webhook_mode:  # on our guarded server (`bot.web`), not PTB's tornado one
            s = self.settings
            self._webhook = TelegramWebhook(
                self.application,
                url=s.telegram_webhook_url,
                secret=s.telegram_webhook_secret,
                listen=s.telegram_webhook_listen,
                port=s.telegram_webhook_port,
                allowed_updates=ALLOWED_UPDATES,
                limits=HttpLimits.from_settings(s),
            )
            await self._webhook.start()
        else:
            await updater.start_polling(timeout=self.poll_timeout, allowed_updates=ALLOWED_UPDATES)
        await self.application.start()
        me = self.application.bot
        log.info("telegram: @%s %s", me.username, "webhook" if self.webhook_mode else "long polling")

    async def stop(self) -> None:
        updater = self.application.updater
        if updater is not None and updater.running:
            await updater.stop()
        if self._webhook is not None:
            await self._webhook.stop()
            self._webhook = None
        if self.application.running:
            await self.application.stop()
        await self.application.shutdown()

    async def serve(self) -> None:
        await serve_until_signalled(self.start, self.stop, self._stopping)

    async def _publish_commands(self) -> None:
        """The command menu Telegram shows everyone: what a viewer may run."""
        commands = [BotCommand(s.name, s.summary[:256]) for s in self.bot.registry.visible_to(Role.VIEWER)]
        try:
            await self.application.bot.set_my_commands(commands)
        except TelegramError as exc:
            log.warning("telegram: could not publish the command menu: %s", exc)

    # --- updates ---------------------------------------------------------------------------------------------

    def _incoming(self, update: Update, text: str | None = None) -> IncomingMessage | None:
        chat, user, message = update.effective_chat, update.effective_user, update.effective_message
        if chat is None or user is None:
            return None
        name = f"@{user.username}" if user.username else user.full_name
        return IncomingMessage(
            platform=self.platform,
            chat_id=str(chat.id),
            user=Identity(self.platform, str(user.id), name),
            text=text if text is not None else ((message.text or "") if message else ""),
            chat_title=chat.title or "",
            is_direct=chat.type == ChatType.PRIVATE,
        )

    async def _on_command(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        incoming = self._incoming(update)
        if incoming is None or update.effective_message is None:
            return
        reply = await self.bot.handle(incoming)
        if reply is not None:
            await self._deliver(incoming, reply, reply_to=update.effective_message.message_id)

    async def _on_other_command(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A command we do not know: answered (and audited) when it is addressed to us — `/x@ourbot`, or any command
        in a private chat — and left alone in a group, where it may be meant for another bot."""
        message, chat = update.effective_message, update.effective_chat
        if message is None or chat is None:
            return
        first = (message.text or "").split(maxsplit=1)[0] if message.text else ""
        target = first.partition("@")[2].lower()
        ours = (context.bot.username or "").lower()
        if (target and target == ours) or (not target and chat.type == ChatType.PRIVATE):
            await self._on_command(update, context)

    async def _on_text(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        incoming = self._incoming(update)
        if incoming is None or update.effective_message is None:
            return
        offer = await asyncio.to_thread(self.bot.offer_risk_checks, incoming)
        if offer is not None:
            await self._deliver(incoming, offer, reply_to=update.effective_message.message_id)

    async def _on_button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        if query is None:
            return
        presser = self._incoming(update, text="")
        if presser is None:  # the message is gone (too old to reach): nothing to run the command for
            await self._answer(query, "This button no longer works.")
            return
        pressed = await self.bot.press(presser, (query.data or "").removeprefix(CALLBACK_PREFIX))
        original = query.message if isinstance(query.message, Message) else None
        if pressed.reply.is_error:
            if not await self._answer(query, _one_line(pressed.reply)[:200]):
                await self._deliver(presser, pressed.reply, reply_to=original.message_id if original else None)
            return
        await self._answer(query)
        if pressed.used_up and original is not None:
            done = f"{original.text_html}\n<i>Checked by {esc(presser.user.display)}</i>"
            with contextlib.suppress(TelegramError):
                await query.edit_message_text(done, reply_markup=None)
        await self._deliver(presser, pressed.reply, reply_to=original.message_id if original else None)

    @staticmethod
    async def _answer(query: CallbackQuery, text: str | None = None) -> bool:
        """Answer a button press (a toast with `text`); False when Telegram refuses (answered too late, say)."""
        try:
            await query.answer(text)
        except TelegramError as exc:
            log.info("telegram: could not answer a button press: %s", exc)
            return False
        return True

    async def _on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        """An update whose handling failed outside the command layer (sending, say): logged with a reference that
        the chat is told, when it can still be told anything."""
        ref = secrets.token_hex(4)
        log.error("telegram: update failed (ref %s)", ref, exc_info=context.error)
        chat = update.effective_chat if isinstance(update, Update) else None
        if chat is not None:
            sorry = Reply.error("Something went wrong on our side; the operators can look it up.", ref)
            with contextlib.suppress(TelegramError):
                await self.application.bot.send_message(chat.id, render_html(sorry)[0])

    # --- sending ---------------------------------------------------------------------------------------------

    async def send(self, chat_id: str, reply: Reply, *, marker: PostMarker | None = None) -> str:
        """Post unprompted (alerts); a Telegram message cannot carry `marker`."""
        try:
            sent = await self._send(chat_id, reply, reply_to=None, pressable_by="", created_by="")
        except Exception as exc:
            raise delivery_error(exc) from exc
        return str(sent[0].message_id) if sent else ""

    async def edit(self, chat_id: str, message_id: str, reply: Reply) -> None:
        """Replace a message posted earlier (an alert whose state changed); a long reply is shortened to fit."""
        try:
            await self._edit(chat_id, message_id, reply)
        except Exception as exc:
            raise delivery_error(exc) from exc

    async def _edit(self, chat_id: str, message_id: str, reply: Reply) -> None:
        chunks = render_html(reply, MESSAGE_LIMIT - 2)
        text = chunks[0] + ("\n…" if len(chunks) > 1 else "") if chunks else "…"
        keyboard = self._keyboard(chat_id, reply.actions, "", "")
        try:
            await self.application.bot.edit_message_text(
                text, chat_id=chat_id, message_id=int(message_id), reply_markup=keyboard
            )
        except BadRequest as exc:
            if "not modified" not in str(exc).lower():
                raise

    async def _deliver(self, incoming: IncomingMessage, reply: Reply, *, reply_to: int | None) -> list[Message]:
        # In a private chat only its owner can press; in a group anyone can (the command's role is still checked).
        pressable_by = incoming.user.key if incoming.is_direct else ""
        return await self._send(
            incoming.chat_id, reply, reply_to=reply_to, pressable_by=pressable_by, created_by=incoming.user.key
        )

    async def _send(
        self, chat_id: str, reply: Reply, *, reply_to: int | None, pressable_by: str, created_by: str
    ) -> list[Message]:
        api = self.application.bot
        chunks = render_html(reply)
        keyboard = self._keyboard(chat_id, reply.actions, pressable_by, created_by)
        sent: list[Message] = []
        quote = ReplyParameters(reply_to, allow_sending_without_reply=True) if reply_to else None
        for index, chunk in enumerate(chunks):
            last = index == len(chunks) - 1
            sent.append(
                await api.send_message(
                    chat_id,
                    chunk,
                    reply_parameters=quote if index == 0 else None,
                    reply_markup=keyboard if last and not reply.attachments else None,
                )
            )
        for index, attachment in enumerate(reply.attachments):
            markup = keyboard if index == len(reply.attachments) - 1 else None
            document = InputFile(attachment.content, filename=attachment.filename)
            caption = caption_html(attachment.caption) if attachment.caption else None
            if attachment.mime in PHOTO_TYPES and len(attachment.content) <= PHOTO_MAX_BYTES:
                sent.append(await api.send_photo(chat_id, document, caption=caption, reply_markup=markup))
            else:
                sent.append(await api.send_document(chat_id, document, caption=caption, reply_markup=markup))
        return sent

    def _keyboard(
        self, chat_id: str, actions: Sequence[Action], pressable_by: str, created_by: str
    ) -> InlineKeyboardMarkup | None:
        if not actions:
            return None
        ids = self.bot.store_actions(self.platform, chat_id, actions, pressable_by=pressable_by, created_by=created_by)
        if not ids:
            return None  # the store could not keep them: the reply goes out without buttons
        rows = [
            [InlineKeyboardButton(action.label[:64], callback_data=f"{CALLBACK_PREFIX}{button_id}")]
            for action, button_id in zip(actions, ids, strict=True)
        ]
        return InlineKeyboardMarkup(rows)


def _one_line(reply: Reply) -> str:
    for part in reply.parts:
        if isinstance(part, ErrorText):
            return part.text + (f" (reference {part.ref})" if part.ref else "")
    return "Done."
