"""Configuration: one TOML file, overridable by `MENTORBOT_<SECTION>_<KEY>` environment variables.

Loaded once into frozen, typed sections. Anything unexpected (an unknown or misspelt key, a wrong
type, a value out of range) stops start-up with a `ConfigError` that names the key, because a
marketplace silently running with a default its admin did not mean is worse than not starting.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
import tomllib
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

ENV_PREFIX = "MENTORBOT_"


class ConfigError(Exception):
    """A configuration problem, worded for the person who edits the file."""


class Secret(str):
    """A string that never shows its value in reprs or logs."""

    def __repr__(self) -> str:
        return "Secret('********')" if self else "Secret('')"

    def reveal(self) -> str:
        return str.__str__(self)

    def __str__(self) -> str:
        return "********" if self else ""


NO_SECRET = Secret("")


@dataclass(frozen=True)
class BotSection:
    default_language: str = "en"
    default_timezone: str = "UTC"
    admins: tuple[str, ...] = ()


@dataclass(frozen=True)
class StorageSection:
    url: str = ""
    data_dir: str = "./data"
    pool_size: int = 5
    auto_migrate: bool = True


@dataclass(frozen=True)
class PaymentsSection:
    demo: bool = False
    order_ttl_minutes: int = 60
    refund_window_days: int = 14
    platform_fee_percent: int = 20


@dataclass(frozen=True)
class MatchingSection:
    offer_size: int = 3
    offer_timeout_minutes: int = 720
    # Score weights (points for a perfect factor); see bot/matching.py for each factor.
    weight_topics: int = 40
    weight_availability: int = 25
    weight_rating: int = 20
    weight_load: int = 10
    weight_history: int = 15
    # Bayesian rating: the prior mean in tenths of a star, worth this many ratings.
    rating_prior_mean_tenths: int = 40
    rating_prior_weight: int = 5
    # Weekly overlap (hours) at which availability counts in full.
    full_overlap_hours: int = 10
    # Share of requests whose last offer slot goes to a new mentor (< new_mentor_ratings).
    exploration_percent: int = 10
    new_mentor_ratings: int = 3


@dataclass(frozen=True)
class SessionsSection:
    duration_minutes: int = 60
    booking_horizon_days: int = 14
    min_lead_minutes: int = 120
    cancel_window_hours: int = 24
    meeting_link_template: str = "https://meet.jit.si/mentorbot-{session_id}-{token}"


@dataclass(frozen=True)
class RatingsSection:
    edit_window_hours: int = 24
    alert_at_or_below: int = 2


@dataclass(frozen=True)
class NoticesSection:
    """How notices to admins are paced (bot/core/notifier.py)."""

    # Admin notices of one kind (low ratings, mentor applications, disputes…) within this many
    # seconds of the last one sent are held and then sent together as one digest (0: never).
    digest_seconds: int = 300


@dataclass(frozen=True)
class RemindersSection:
    offsets_minutes: tuple[int, ...] = (1440, 60)
    sweep_seconds: int = 30


@dataclass(frozen=True)
class LessonsSection:
    """Course lessons delivered in chat (bot/learning/lessons.py)."""

    # Dripped lessons arrive at this hour (0-23) of each learner's own local day.
    drip_hour: int = 9
    # The largest file a lesson may carry, in kilobytes.
    max_file_kb: int = 8192


@dataclass(frozen=True)
class SatisfactionSection:
    """The satisfaction model behind /admin stats (bot/reporting/satisfaction.py)."""

    # Relative weights of the three qualities (whole numbers; 40/30/30 = 0.4/0.3/0.3).
    weight_resources: int = 40
    weight_mentors: int = 30
    weight_support: int = 30
    # Hours from asking to having a mentor that score 50 for speed (no wait scores 100).
    accept_target_hours: int = 24
    # Weeks shown in the chart and the CSV.
    report_weeks: int = 12


@dataclass(frozen=True)
class AccountsSection:
    """One account across platforms (/link) and data rights (/mydata, /deleteme)."""

    # A /link code works once, for this many minutes.
    link_code_minutes: int = 10
    # Wrong, expired or used codes a user may enter within the window before /link refuses.
    link_max_failures: int = 5
    link_failure_window_minutes: int = 60


@dataclass(frozen=True)
class ConsoleSection:
    language: str = "en"
    timezone: str = "UTC"


@dataclass(frozen=True)
class WebSection:
    """The one HTTP server (Stripe webhooks, Telegram webhook mode, health checks)."""

    host: str = "127.0.0.1"
    port: int = 8080
    # A connection whose request line and headers have not all arrived this many seconds after
    # it opened (or after its next request's first byte) is closed: slow clients cannot hold it.
    header_timeout_seconds: float = 10
    # A request whose body has not all arrived this many seconds after its headers gets 408.
    body_timeout_seconds: float = 30
    # Connections open at once; beyond this a new one is answered 503 and closed at once.
    max_connections: int = 256
    # This server as learners' browsers reach it (e.g. "https://bot.example.com", behind a
    # reverse proxy). With it, Stripe's success and cancel pages default to the bot's own.
    public_url: str = ""


@dataclass(frozen=True)
class TelegramSection:
    """The Telegram adapter; it starts when `token` is set."""

    token: Secret = NO_SECRET
    # The Bot API server root; `/bot<token>/<method>` is appended (a local Bot API server or a
    # test fake can be set here).
    base_url: str = "https://api.telegram.org"
    mode: str = "polling"
    # Webhook mode: the public HTTPS URL Telegram posts updates to; its path is served by the
    # [web] server. The secret is checked on every update (X-Telegram-Bot-Api-Secret-Token).
    webhook_url: str = ""
    webhook_secret: Secret = NO_SECRET
    # Sell courses for Telegram Stars (currency XTR) inside Telegram.
    stars: bool = True
    # Buttons older than this answer "this button has expired".
    button_ttl_days: int = 30
    # How often a send that Telegram answered with 429 is retried after its retry_after.
    max_retries: int = 5
    # This process's share of Telegram's overall limit for one bot (about 30 messages/s).
    # Processes sharing a token each throttle alone: give each 30 / their number.
    messages_per_second: int = 30
    # False: no rate limiter at all (benchmarks against a fake Bot API; never in production).
    flood_control: bool = True
    # Updates handled at once (one user's updates are always handled in order).
    concurrent_updates: int = 16
    # Stars reconciliation (at start-up and then every interval; 0: off): fulfil the Stars
    # payments of the last `reconcile_lookback_hours` whose successful_payment update was lost.
    reconcile_interval_minutes: int = 15
    reconcile_lookback_hours: int = 72


# The bot's own pages Stripe Checkout returns the learner to (bot/providers/stripe/landing.py),
# under [web] public_url. Stripe fills in {CHECKOUT_SESSION_ID} in the success URL only.
LANDING_SUCCESS_PATH = "/pay/success"
LANDING_CANCEL_PATH = "/pay/cancel"
LANDING_RETURN_PATH = "/pay/back"  # where the Customer Portal's return link goes


@dataclass(frozen=True)
class StripeSection:
    """Card payments through Stripe Checkout; enabled when `secret_key` is set."""

    secret_key: Secret = NO_SECRET
    # Signs the webhooks Stripe sends to `webhook_path` on the [web] server ("whsec_…").
    webhook_secret: Secret = NO_SECRET
    # Empty: Stripe's own API. A local test server or an egress proxy can be set here.
    api_base: str = ""
    # Where Checkout sends the learner after paying or giving up (Stripe fills in
    # {CHECKOUT_SESSION_ID}); fulfilment never depends on these pages being loaded. Empty
    # with [web] public_url set: the bot's own pages there (see `with_landing_pages`).
    success_url: str = ""
    cancel_url: str = ""
    # The Customer Portal's link back ("Manage billing"); empty: the bot's own page on
    # [web] public_url, else cancel_url.
    portal_return_url: str = ""
    webhook_path: str = "/stripe/webhook"
    # A webhook whose signed timestamp is further than this from our clock is refused.
    signature_tolerance_seconds: int = 300
    # Platforms whose learners get a "Pay by card" button.
    platforms: tuple[str, ...] = ("discord", "console")
    # Reconciliation (at start-up and then every interval): fulfil paid Checkout Sessions
    # created within the lookback that no webhook reached.
    reconcile_interval_minutes: int = 15
    reconcile_lookback_hours: int = 72
    # Each Stripe API call: seconds before giving up, and retries of a failed call.
    timeout_seconds: int = 10
    max_network_retries: int = 2


@dataclass(frozen=True)
class DiscordSection:
    """The Discord adapter; it starts when `token` is set."""

    token: Secret = NO_SECRET
    # 0: learnt from the token at login.
    application_id: int = 0
    # Slash commands are synced to these guilds (servers); none: synced globally.
    guild_ids: tuple[int, ...] = ()
    # New mentorship requests are posted here with Accept / Decline buttons; 0: DMs only.
    mentors_channel_id: int = 0
    # Members with one of these roles are marketplace admins while they use the bot there.
    admin_role_ids: tuple[int, ...] = ()
    # Empty: Discord's own REST API and gateway. A REST proxy or a test fake can be set here.
    api_base: str = ""
    gateway_url: str = ""
    # Sharding: the total number of shards across all processes (0: unsharded, one gateway
    # connection) and the ones this process connects (empty: all of them).
    shard_count: int = 0
    shard_ids: tuple[int, ...] = ()

    def own_shards(self) -> tuple[int, ...]:
        """The shards this process connects; unsharded is shard 0 of 1."""
        return self.shard_ids or tuple(range(max(self.shard_count, 1)))

    def syncs_commands(self) -> bool:
        """Whether this process syncs the slash commands: the one owning shard 0, so that
        several processes sharing a bot do not all overwrite them."""
        return 0 in self.own_shards()


@dataclass(frozen=True)
class ClockSection:
    speed: int = 1
    # The wall-clock instant (ISO 8601 with an offset) from which a scaled clock runs `speed`
    # times faster; processes given the same start agree on the time. Empty: process start.
    start: str = ""

    def start_instant(self) -> datetime | None:
        if not self.start:
            return None
        return datetime.fromisoformat(self.start).astimezone(UTC)


@dataclass(frozen=True)
class LoggingSection:
    level: str = "WARNING"
    format: str = "json"


# --- subscriptions ---
@dataclass(frozen=True)
class SubscriptionsSection:
    # After a failed renewal the learner keeps access this many days while the card is fixed.
    grace_days: int = 7
    # The renewal reminder goes this many days before a renewal; the trial notice as many
    # days before a trial ends.
    remind_days_before: int = 3
    # A Stars subscription renews by itself; with no charge by its expiration date plus this
    # many hours it lapses (Telegram sends no update for a failed renewal).
    stars_lapse_hours: int = 24
    # Mentors may sell plans of their own (`/myplans`), sold with them alone; admins are told.
    mentor_plans: bool = False


# --- end subscriptions ---


@dataclass(frozen=True)
class DiscussionSection:
    """Mentorship conversations relayed through the bot (`/ask`, `/answer`) (issue 18)."""

    # Relayed messages are kept this many days, then erased by the sweep.
    keep_days: int = 180
    # A Discord category id: each mentorship whose two sides are both on Discord also gets a
    # private channel there that only they (and the bot) can see. 0: none.
    discord_category_id: int = 0


@dataclass(frozen=True)
class CommunitySection:
    """Community spaces a course's active learners get, revoked when access ends."""

    # One entry per space: "SLUG=discord:ROLE_ID" (a guild role granting a channel or forum),
    # "SLUG=telegram:CHAT_ID" (a supergroup, joined by a single-use invite link), or
    # "SLUG=telegram:CHAT_ID/TOPIC" (the course's topic in a forum supergroup: its name, made
    # by the bot if missing, or its message_thread_id as digits). Courses may share a chat.
    spaces: tuple[str, ...] = ()
    # How long a Telegram invite link stays usable.
    invite_hours: int = 24
    # How often every grant is checked against the platform (drift: added or removed by hand).
    check_minutes: int = 60

    def course_spaces(self, slug: str) -> list[tuple[str, str, str]]:
        """(platform, reference, topic) of each space the course `slug` gives access to; the
        topic is "" for a whole chat or role."""
        found = []
        for entry in self.spaces:
            course, _eq, target = entry.partition("=")
            platform, _colon, place = target.partition(":")
            ref, _slash, topic = place.partition("/")
            if course.strip() == slug:
                found.append((platform.strip(), ref.strip(), topic.strip()))
        return found


@dataclass(frozen=True)
class RecommendSection:
    """Personalised recommendations (bot/recommending/)."""

    # Share of learners (fixed per learner) shown the popularity baseline instead of the
    # hybrid ranker, so /admin stats recommendations can compare the two.
    baseline_share: float = 0.10
    # Suggestions per reply.
    size: int = 3
    # Relative weights of the hybrid's signals (whole numbers).
    weight_content: int = 20
    weight_collaborative: int = 70
    weight_popularity: int = 10
    # Percent of replies whose last suggestion is a new course (exploration).
    exploration_percent: int = 10
    # A course is new for this many days after it was added.
    new_course_days: int = 30
    # Seeds the baseline split and exploration (same database + seed: same suggestions).
    seed: int = 0
    # Plans, and as many workshops, after the courses in the welcome and at the end of a
    # course (0: none), and in /recommend.
    extras: int = 1
    extras_recommend: int = 2


@dataclass(frozen=True)
class ModelsSection:
    """The design's learning efficiency and revenue growth models (bot/reporting/design.py)."""

    # learning efficiency = personalised support · interactivity · resource richness
    efficiency_weight_support: int = 40
    efficiency_weight_interactivity: int = 30
    efficiency_weight_resources: int = 30
    # revenue growth = satisfaction · growth of active learners · market competitiveness
    growth_weight_satisfaction: int = 50
    growth_weight_learners: int = 30
    growth_weight_competitiveness: int = 20
    # Lessons, files and links per enrolled learner that score 50 for richness.
    richness_target: int = 10


@dataclass(frozen=True)
class Config:
    bot: BotSection = field(default_factory=BotSection)
    storage: StorageSection = field(default_factory=StorageSection)
    payments: PaymentsSection = field(default_factory=PaymentsSection)
    matching: MatchingSection = field(default_factory=MatchingSection)
    sessions: SessionsSection = field(default_factory=SessionsSection)
    reminders: RemindersSection = field(default_factory=RemindersSection)
    notices: NoticesSection = field(default_factory=NoticesSection)
    ratings: RatingsSection = field(default_factory=RatingsSection)
    lessons: LessonsSection = field(default_factory=LessonsSection)
    satisfaction: SatisfactionSection = field(default_factory=SatisfactionSection)
    accounts: AccountsSection = field(default_factory=AccountsSection)
    console: ConsoleSection = field(default_factory=ConsoleSection)
    web: WebSection = field(default_factory=WebSection)
    telegram: TelegramSection = field(default_factory=TelegramSection)
    stripe: StripeSection = field(default_factory=StripeSection)
    discord: DiscordSection = field(default_factory=DiscordSection)
    clock: ClockSection = field(default_factory=ClockSection)
    logging: LoggingSection = field(default_factory=LoggingSection)
    workshops: WorkshopsSection = field(default_factory=lambda: WorkshopsSection())
    discussion: DiscussionSection = field(default_factory=DiscussionSection)
    community: CommunitySection = field(default_factory=CommunitySection)
    subscriptions: SubscriptionsSection = field(default_factory=SubscriptionsSection)
    recommend: RecommendSection = field(default_factory=RecommendSection)
    models: ModelsSection = field(default_factory=ModelsSection)

    def secrets(self) -> list[str]:
        """Every configured secret's value, so logging can scrub them."""
        found = [self.storage.url] if "@" in self.storage.url else []
        for section in dataclasses.fields(self):
            values = getattr(self, section.name)
            for fld in dataclasses.fields(values):
                value = getattr(values, fld.name)
                if isinstance(value, Secret) and value:
                    found.append(value.reveal())
        return found

    def database_url(self) -> str:
        """The SQLAlchemy URL; by default a SQLite file inside `storage.data_dir`."""
        if self.storage.url:
            return self.storage.url
        path = Path(self.storage.data_dir).expanduser().resolve() / "mentorbot.db"
        return f"sqlite+aiosqlite:///{path}"

    def admin_roles_for(self, platform: str) -> frozenset[str]:
        """Platform role ids that make a member an admin: the platform section's
        `admin_role_ids`, if it has any."""
        section = getattr(self, platform, None)
        return frozenset(str(role) for role in getattr(section, "admin_role_ids", ()))


LANGUAGES = ("en", "zh")


def load_config(path: str | Path | None = None, env: Mapping[str, str] | None = None) -> Config:
    """Read the TOML file (if any), apply environment overrides and validate everything."""
    env = os.environ if env is None else env
    raw: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"config file {p} does not exist")
        try:
            raw = tomllib.loads(p.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{p} is not valid TOML: {exc}") from exc
    return config_from_mapping(raw, env)


def config_from_mapping(raw: Mapping[str, Any], env: Mapping[str, str] | None = None) -> Config:
    env = {} if env is None else env
    sections: dict[str, Any] = {}
    known = {f.name: f for f in dataclasses.fields(Config)}
    for name in raw:
        if name not in known:
            raise ConfigError(_unknown("", name, known))
    for name, fld in known.items():
        section_type = _section_type(fld)
        given = raw.get(name, {})
        if not isinstance(given, Mapping):
            raise ConfigError(f"[{name}] must be a table")
        sections[name] = _build_section(name, section_type, given, env)
    _check_env_names(env)
    config = with_landing_pages(Config(**sections))
    _validate(config)
    return config


def with_landing_pages(config: Config) -> Config:
    """Stripe's success, cancel and portal-return URLs that are not configured point at the
    bot's own pages on `[web] public_url`, if it is set; a URL given in the config is kept as
    it is. Without either, the portal returns to the cancel URL."""
    base = config.web.public_url.rstrip("/")
    s = config.stripe
    if base:
        s = dataclasses.replace(
            s,
            success_url=s.success_url
            or f"{base}{LANDING_SUCCESS_PATH}?session_id={{CHECKOUT_SESSION_ID}}",
            cancel_url=s.cancel_url or f"{base}{LANDING_CANCEL_PATH}",
            portal_return_url=s.portal_return_url or f"{base}{LANDING_RETURN_PATH}",
        )
    if not s.portal_return_url:
        s = dataclasses.replace(s, portal_return_url=s.cancel_url or s.success_url)
    return config if s == config.stripe else dataclasses.replace(config, stripe=s)


# Variables with the prefix that are not config keys: the config file's path, and the test
# suite's own (MENTORBOT_TEST_POSTGRES_URL).
OTHER_ENV = ("MENTORBOT_CONFIG",)
OTHER_ENV_PREFIXES = ("MENTORBOT_TEST_",)


def env_names() -> list[str]:
    """Every `MENTORBOT_<SECTION>_<KEY>` that sets a config key."""
    names = []
    for fld in dataclasses.fields(Config):
        for key in dataclasses.fields(_section_type(fld)):
            names.append(f"{ENV_PREFIX}{fld.name.upper()}_{key.name.upper()}")
    return names


def _check_env_names(env: Mapping[str, str]) -> None:
    """A misspelt variable would be ignored without a word, so it stops start-up like a
    misspelt key in the file does."""
    known = set(env_names())
    for name in sorted(env):
        if not name.startswith(ENV_PREFIX) or name in known or name in OTHER_ENV:
            continue
        if name.startswith(OTHER_ENV_PREFIXES):
            continue
        close = difflib.get_close_matches(name, sorted(known), n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise ConfigError(f"unknown environment variable {name}{hint}")


def _section_type(fld: dataclasses.Field[Any]) -> type:
    hints = typing.get_type_hints(Config)
    return typing.cast(type, hints[fld.name])


def _unknown(section: str, key: str, known: Mapping[str, Any]) -> str:
    where = f"[{section}] " if section else ""
    close = difflib.get_close_matches(key, list(known), n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return f"unknown key {where}'{key}'{hint}; known keys: {', '.join(sorted(known))}"


def _build_section(
    section: str, section_type: type, given: Mapping[str, Any], env: Mapping[str, str]
) -> Any:
    hints = typing.get_type_hints(section_type)
    fields = {f.name: f for f in dataclasses.fields(section_type)}
    for key in given:
        if key not in fields:
            raise ConfigError(_unknown(section, key, fields))
    values: dict[str, Any] = {}
    for key in fields:
        env_name = f"{ENV_PREFIX}{section.upper()}_{key.upper()}"
        if env_name in env:
            values[key] = _coerce_env(f"{env_name}", env[env_name], hints[key])
        elif key in given:
            values[key] = _check_type(f"[{section}] {key}", given[key], hints[key])
    return section_type(**values)


def _check_type(where: str, value: Any, expected: Any) -> Any:
    origin = typing.get_origin(expected)
    if expected is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where} must be true or false, got {value!r}")
        return value
    if expected is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where} must be a whole number, got {value!r}")
        return value
    if expected is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{where} must be a number, got {value!r}")
        return float(value)
    if expected in (str, Secret):
        if not isinstance(value, str):
            raise ConfigError(f"{where} must be a string, got {value!r}")
        return expected(value)
    if origin is tuple:
        (item_type, _ellipsis) = typing.get_args(expected)
        if not isinstance(value, list):
            raise ConfigError(f"{where} must be a list, got {value!r}")
        return tuple(_check_type(f"{where}[{i}]", v, item_type) for i, v in enumerate(value))
    raise ConfigError(f"{where}: unsupported type {expected!r}")  # pragma: no cover


def _coerce_env(where: str, text: str, expected: Any) -> Any:
    if expected is bool:
        lowered = text.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{where} must be true or false, got {text!r}")
    if expected is int:
        try:
            return int(text)
        except ValueError:
            raise ConfigError(f"{where} must be a whole number, got {text!r}") from None
    if expected is float:
        try:
            return float(text)
        except ValueError:
            raise ConfigError(f"{where} must be a number, got {text!r}") from None
    if typing.get_origin(expected) is tuple:
        (item_type, _ellipsis) = typing.get_args(expected)
        items = [t.strip() for t in text.split(",") if t.strip()]
        return tuple(_coerce_env(where, t, item_type) for t in items)
    return expected(text)


def _validate(config: Config) -> None:
    for where, lang in (
        ("[bot] default_language", config.bot.default_language),
        ("[console] language", config.console.language),
    ):
        if lang not in LANGUAGES:
            raise ConfigError(f"{where} must be one of {', '.join(LANGUAGES)}, got {lang!r}")
    for where, tz in (
        ("[bot] default_timezone", config.bot.default_timezone),
        ("[console] timezone", config.console.timezone),
    ):
        try:
            ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError):
            raise ConfigError(
                f"{where} must be an IANA timezone such as Europe/Berlin, got {tz!r}"
            ) from None
    positive = {
        "[storage] pool_size": config.storage.pool_size,
        "[payments] order_ttl_minutes": config.payments.order_ttl_minutes,
        "[matching] offer_size": config.matching.offer_size,
        "[matching] offer_timeout_minutes": config.matching.offer_timeout_minutes,
        "[sessions] duration_minutes": config.sessions.duration_minutes,
        "[sessions] booking_horizon_days": config.sessions.booking_horizon_days,
        "[reminders] sweep_seconds": config.reminders.sweep_seconds,
        "[subscriptions] grace_days": config.subscriptions.grace_days,
        "[subscriptions] remind_days_before": config.subscriptions.remind_days_before,
    }
    for where, value in positive.items():
        if value <= 0:
            raise ConfigError(f"{where} must be greater than 0, got {value}")
    _validate_web(config.web)
    _validate_matching(config.matching)
    _validate_learning_loop(config)
    _validate_telegram(config.telegram)
    _validate_stripe(config)
    _validate_discord(config.discord)
    _validate_community(config)
    _validate_recommend(config)
    for where, value in (
        ("[sessions] min_lead_minutes", config.sessions.min_lead_minutes),
        ("[sessions] cancel_window_hours", config.sessions.cancel_window_hours),
        ("[ratings] edit_window_hours", config.ratings.edit_window_hours),
        ("[notices] digest_seconds", config.notices.digest_seconds),
    ):
        if value < 0:
            raise ConfigError(f"{where} must not be negative, got {value}")
    if config.payments.refund_window_days < 0:
        raise ConfigError("[payments] refund_window_days must not be negative")
    if not 0 <= config.payments.platform_fee_percent <= 100:
        raise ConfigError(
            "[payments] platform_fee_percent must be from 0 to 100, "
            f"got {config.payments.platform_fee_percent}"
        )
    if not 1 <= config.clock.speed <= 100_000:
        raise ConfigError(f"[clock] speed must be from 1 to 100000, got {config.clock.speed}")
    if config.clock.start:
        try:
            start = datetime.fromisoformat(config.clock.start)
        except ValueError:
            start = None
        if start is None or start.tzinfo is None:
            raise ConfigError(
                "[clock] start must be an ISO 8601 instant with an offset, e.g. "
                f"'2026-03-02T08:00:00+00:00'; got {config.clock.start!r}"
            )
    if not 0 <= config.ratings.alert_at_or_below <= 5:
        raise ConfigError("[ratings] alert_at_or_below must be from 0 (never) to 5")
    for i, offset in enumerate(config.reminders.offsets_minutes):
        if offset <= 0:
            raise ConfigError(f"[reminders] offsets_minutes[{i}] must be greater than 0")
    for i, ident in enumerate(config.bot.admins):
        if ":" not in ident:
            raise ConfigError(
                f"[bot] admins[{i}] must look like 'platform:id' (e.g. 'telegram:12345'), "
                f"got {ident!r}"
            )
    if config.logging.level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ConfigError("[logging] level must be DEBUG, INFO, WARNING or ERROR")
    if config.logging.format not in ("json", "text"):
        raise ConfigError("[logging] format must be 'json' or 'text'")


def _validate_web(w: WebSection) -> None:
    if not 0 <= w.port <= 65535:
        raise ConfigError(f"[web] port must be from 0 to 65535, got {w.port}")
    for key, seconds in (
        ("header_timeout_seconds", w.header_timeout_seconds),
        ("body_timeout_seconds", w.body_timeout_seconds),
    ):
        if not 0 < seconds <= 3600:  # also refuses NaN and infinity
            raise ConfigError(
                f"[web] {key} must be greater than 0 and at most 3600, got {seconds:g}"
            )
    if w.max_connections <= 0:
        raise ConfigError(f"[web] max_connections must be greater than 0, got {w.max_connections}")
    if w.public_url:
        parts = urlsplit(w.public_url)
        if parts.scheme not in ("https", "http") or not parts.hostname or parts.query:
            raise ConfigError(
                "[web] public_url must be the http(s) address browsers reach this server at, "
                f"without a query (e.g. 'https://bot.example.com'), got {w.public_url!r}"
            )


def _validate_matching(m: MatchingSection) -> None:
    """Weights may be 0 (factor off) but not negative; ranges keep the score meaningful."""
    weights = {
        "weight_topics": m.weight_topics,
        "weight_availability": m.weight_availability,
        "weight_rating": m.weight_rating,
        "weight_load": m.weight_load,
        "weight_history": m.weight_history,
        "rating_prior_weight": m.rating_prior_weight,
        "new_mentor_ratings": m.new_mentor_ratings,
    }
    for key, value in weights.items():
        if value < 0:
            raise ConfigError(f"[matching] {key} must not be negative, got {value}")
    if not 10 <= m.rating_prior_mean_tenths <= 50:
        raise ConfigError(
            "[matching] rating_prior_mean_tenths must be from 10 to 50 (1.0★ to 5.0★), "
            f"got {m.rating_prior_mean_tenths}"
        )
    if not 1 <= m.full_overlap_hours <= 168:
        raise ConfigError(
            f"[matching] full_overlap_hours must be from 1 to 168, got {m.full_overlap_hours}"
        )
    if not 0 <= m.exploration_percent <= 100:
        raise ConfigError(
            f"[matching] exploration_percent must be from 0 to 100, got {m.exploration_percent}"
        )


def _validate_learning_loop(config: Config) -> None:
    """[lessons], [satisfaction] and [accounts]."""
    if not 0 <= config.lessons.drip_hour <= 23:
        raise ConfigError(
            f"[lessons] drip_hour must be from 0 to 23, got {config.lessons.drip_hour}"
        )
    s = config.satisfaction
    weights = {
        "weight_resources": s.weight_resources,
        "weight_mentors": s.weight_mentors,
        "weight_support": s.weight_support,
    }
    for key, value in weights.items():
        if value < 0:
            raise ConfigError(f"[satisfaction] {key} must not be negative, got {value}")
    if not sum(weights.values()):
        raise ConfigError("[satisfaction] at least one weight must be greater than 0")
    if not 2 <= s.report_weeks <= 104:
        raise ConfigError(
            f"[satisfaction] report_weeks must be from 2 to 104, got {s.report_weeks}"
        )
    if not 1 <= config.accounts.link_code_minutes <= 60:
        raise ConfigError(
            "[accounts] link_code_minutes must be from 1 to 60, "
            f"got {config.accounts.link_code_minutes}"
        )
    positive = {
        "[lessons] max_file_kb": config.lessons.max_file_kb,
        "[satisfaction] accept_target_hours": s.accept_target_hours,
        "[accounts] link_max_failures": config.accounts.link_max_failures,
        "[accounts] link_failure_window_minutes": config.accounts.link_failure_window_minutes,
    }
    for where, value in positive.items():
        if value <= 0:
            raise ConfigError(f"{where} must be greater than 0, got {value}")


# Telegram accepts 1-256 of these characters; a short secret can be guessed, so we ask for 32.
_WEBHOOK_SECRET = re.compile(r"[A-Za-z0-9_-]{32,256}")
# A Stripe endpoint's signing secret: "whsec_" and (in practice 32) more characters.
_STRIPE_WEBHOOK_SECRET = re.compile(r"whsec_\S{24,}")


def _validate_telegram(t: TelegramSection) -> None:
    if t.mode not in ("polling", "webhook"):
        raise ConfigError(f"[telegram] mode must be 'polling' or 'webhook', got {t.mode!r}")
    if t.token and ":" not in t.token.reveal():
        raise ConfigError("[telegram] token must look like '123456:ABC-DEF…' (from @BotFather)")
    if not t.base_url.startswith(("https://", "http://")):
        raise ConfigError(f"[telegram] base_url must be an http(s) URL, got {t.base_url!r}")
    for key, value in (
        ("button_ttl_days", t.button_ttl_days),
        ("concurrent_updates", t.concurrent_updates),
        ("reconcile_lookback_hours", t.reconcile_lookback_hours),
        ("messages_per_second", t.messages_per_second),
    ):
        if value <= 0:
            raise ConfigError(f"[telegram] {key} must be greater than 0, got {value}")
    for key, value in (
        ("max_retries", t.max_retries),
        ("reconcile_interval_minutes", t.reconcile_interval_minutes),
    ):
        if value < 0:
            raise ConfigError(f"[telegram] {key} must not be negative, got {value}")
    if t.mode != "webhook" or not t.token:
        return
    if not t.webhook_url.startswith(("https://", "http://")) or not urlsplit(t.webhook_url).path:
        raise ConfigError(
            "[telegram] webhook_url must be the public URL Telegram posts to, with a path, "
            f"e.g. https://bot.example.com/telegram/webhook; got {t.webhook_url!r}"
        )
    if not _WEBHOOK_SECRET.fullmatch(t.webhook_secret.reveal()):
        raise ConfigError(
            "[telegram] webhook_secret must be 32-256 characters of A-Z, a-z, 0-9, _ and - "
            "(Telegram accepts 1, but a short secret can be guessed, so we require at least "
            "32; e.g. `openssl rand -hex 16`); set it from MENTORBOT_TELEGRAM_WEBHOOK_SECRET"
        )


def _validate_stripe(config: Config) -> None:
    """Only checked when Stripe is enabled; values are never echoed for the secrets."""
    s = config.stripe
    if not s.secret_key:
        return
    if not s.secret_key.reveal().startswith(("sk_", "rk_")):
        raise ConfigError(
            "[stripe] secret_key must be a Stripe secret or restricted key (sk_… or rk_…); "
            "set it from MENTORBOT_STRIPE_SECRET_KEY"
        )
    if not s.webhook_secret:
        raise ConfigError(
            "[stripe] webhook_secret is required when secret_key is set (the endpoint's "
            "signing secret, whsec_…); set it from MENTORBOT_STRIPE_WEBHOOK_SECRET"
        )
    if not _STRIPE_WEBHOOK_SECRET.fullmatch(s.webhook_secret.reveal()):
        raise ConfigError(
            "[stripe] webhook_secret must be the endpoint's signing secret: whsec_ followed by "
            "at least 24 characters, no spaces (copy it from the Stripe dashboard); set it "
            "from MENTORBOT_STRIPE_WEBHOOK_SECRET"
        )
    for key, url in (
        ("success_url", s.success_url),
        ("cancel_url", s.cancel_url),
        ("portal_return_url", s.portal_return_url),
    ):
        if not url.startswith(("https://", "http://")):
            raise ConfigError(
                f"[stripe] {key} must be an http(s) URL, got {url!r} (or leave it empty and "
                "set [web] public_url: the bot then serves the page itself)"
            )
    if s.api_base and not s.api_base.startswith(("https://", "http://")):
        raise ConfigError(f"[stripe] api_base must be an http(s) URL, got {s.api_base!r}")
    if not s.webhook_path.startswith("/"):
        raise ConfigError(f"[stripe] webhook_path must start with '/', got {s.webhook_path!r}")
    for key, value in (
        ("signature_tolerance_seconds", s.signature_tolerance_seconds),
        ("reconcile_interval_minutes", s.reconcile_interval_minutes),
        ("reconcile_lookback_hours", s.reconcile_lookback_hours),
        ("timeout_seconds", s.timeout_seconds),
    ):
        if value <= 0:
            raise ConfigError(f"[stripe] {key} must be greater than 0, got {value}")
    if s.max_network_retries < 0:
        raise ConfigError("[stripe] max_network_retries must not be negative")
    if not 30 <= config.payments.order_ttl_minutes <= 1440:
        raise ConfigError(
            "[payments] order_ttl_minutes must be from 30 to 1440 when Stripe is enabled "
            "(a Checkout Session lasts 30 minutes to 24 hours and expires with its order), "
            f"got {config.payments.order_ttl_minutes}"
        )


def _validate_discord(d: DiscordSection) -> None:
    for key, ids in (
        ("application_id", (d.application_id,)),
        ("mentors_channel_id", (d.mentors_channel_id,)),
        ("guild_ids", d.guild_ids),
        ("admin_role_ids", d.admin_role_ids),
    ):
        if any(i < 0 for i in ids):
            raise ConfigError(f"[discord] {key} must be Discord ids (positive numbers)")
    for key, url, schemes in (
        ("api_base", d.api_base, ("https://", "http://")),
        ("gateway_url", d.gateway_url, ("wss://", "ws://")),
    ):
        if url and not url.startswith(schemes):
            raise ConfigError(
                f"[discord] {key} must start with {' or '.join(schemes)}, got {url!r}"
            )
    _validate_discord_shards(d)


def _validate_discord_shards(d: DiscordSection) -> None:
    if d.shard_count < 0:
        raise ConfigError(
            f"[discord] shard_count must not be negative (0: unsharded), got {d.shard_count}"
        )
    if d.shard_ids and not d.shard_count:
        raise ConfigError(
            "[discord] shard_ids needs shard_count, the total number of shards across all "
            "processes (e.g. shard_count = 2 with shard_ids = [0] here and [1] elsewhere)"
        )
    seen: set[int] = set()
    for i, shard in enumerate(d.shard_ids):
        if not 0 <= shard < d.shard_count:
            raise ConfigError(
                f"[discord] shard_ids[{i}] must be from 0 to {d.shard_count - 1} "
                f"(shard_count is {d.shard_count}), got {shard}"
            )
        if shard in seen:
            raise ConfigError(f"[discord] shard_ids lists shard {shard} twice")
        seen.add(shard)


# --- workshops (group sessions): bot/sessions/workshops.py ---------------------------------


@dataclass(frozen=True)
class WorkshopsSection:
    """Group sessions: seats, a waitlist, and a Discord scheduled event for each."""

    # A waitlisted learner offered a freed seat has this many minutes to confirm it.
    confirm_minutes: int = 60
    # The most occurrences one weekly `/workshop new … weekly=N` creates.
    max_weekly: int = 12
    # The most seats a workshop may have.
    max_seats: int = 500
    # The guild whose scheduled events show the workshops; 0: the first of [discord] guild_ids.
    discord_guild_id: int = 0
    # Also create a voice channel per workshop with user_limit = seats (only attendees connect).
    discord_voice_channels: bool = False


def _validate_community(config: Config) -> None:
    """`[discussion]` and `[community]` (issue 18)."""
    for where, value in (
        ("[discussion] keep_days", config.discussion.keep_days),
        ("[community] invite_hours", config.community.invite_hours),
        ("[community] check_minutes", config.community.check_minutes),
    ):
        if value <= 0:
            raise ConfigError(f"{where} must be greater than 0, got {value}")
    places: set[tuple[str, str, str]] = set()
    for i, entry in enumerate(config.community.spaces):
        course, eq, target = entry.partition("=")
        platform, colon, place = target.partition(":")
        ref, slash, topic = place.partition("/")
        if (
            not eq
            or not colon
            or not course.strip()
            or platform.strip() not in ("discord", "telegram")
            or not ref.strip().lstrip("-").isdigit()
        ):
            raise ConfigError(
                f"[community] spaces[{i}] must look like 'SLUG=discord:ROLE_ID', "
                f"'SLUG=telegram:CHAT_ID' or 'SLUG=telegram:CHAT_ID/TOPIC', got {entry!r}"
            )
        if slash and (platform.strip() != "telegram" or not 1 <= len(topic.strip()) <= 128):
            raise ConfigError(
                f"[community] spaces[{i}]: a topic ('/TOPIC') is a Telegram forum topic's "
                f"name (1-128 characters) or id, after a Telegram chat id; got {entry!r}"
            )
        place_key = (course.strip(), platform.strip(), ref.strip())
        if place_key in places:
            raise ConfigError(
                f"[community] spaces[{i}] gives the course {course.strip()!r} a second space "
                f"in {platform.strip()}:{ref.strip()}; one course has one place (one topic) "
                f"per chat or role, got {entry!r}"
            )
        places.add(place_key)


def _validate_recommend(config: Config) -> None:
    """[recommend] and [models]."""
    r = config.recommend
    if not 0 <= r.baseline_share <= 1:
        raise ConfigError(f"[recommend] baseline_share must be from 0 to 1, got {r.baseline_share}")
    if not 1 <= r.size <= 10:
        raise ConfigError(f"[recommend] size must be from 1 to 10, got {r.size}")
    for name, value in (("extras", r.extras), ("extras_recommend", r.extras_recommend)):
        if not 0 <= value <= 5:
            raise ConfigError(f"[recommend] {name} must be from 0 to 5, got {value}")
    if not 0 <= r.exploration_percent <= 100:
        raise ConfigError(
            f"[recommend] exploration_percent must be from 0 to 100, got {r.exploration_percent}"
        )
    groups = {
        "[recommend]": {
            "weight_content": r.weight_content,
            "weight_collaborative": r.weight_collaborative,
            "weight_popularity": r.weight_popularity,
            "new_course_days": r.new_course_days,
        },
        "[models]": {
            f.name: getattr(config.models, f.name) for f in dataclasses.fields(config.models)
        },
    }
    for section, values in groups.items():
        for key, value in values.items():
            if value < 0:
                raise ConfigError(f"{section} {key} must not be negative, got {value}")
    if r.weight_content + r.weight_collaborative + r.weight_popularity <= 0:
        raise ConfigError("[recommend] at least one weight must be greater than 0")
    if config.models.richness_target <= 0:
        raise ConfigError("[models] richness_target must be greater than 0")
