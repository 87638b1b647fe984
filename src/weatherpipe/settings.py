"""All of weatherpipe's settings, in one typed model read from environment variables.

Names follow the seed's Docker Compose files where it has them (`KAFKA_BOOTSTRAP_SERVERS`,
`KAFKA_TOPIC`, `KAFKA_GROUP_ID`, `CSV_PATH`, `RAW_DIR`, `ROTATE_MB`). A `.env` file in the working
directory is read too; real environment variables win over it. Every default works on a plain
machine: the local platform (`weatherpipe platform up`) listens where these defaults point.

The original project's names `PG_DSN` and `RAW_ROOT` are read as aliases of `DATABASE_URL` and
`RAW_DIR` (`ALIASES`), so its `.env` keeps working; both names set to different values is an
error rather than a silent choice of one.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cached_property
from pathlib import Path
from typing import Any, Final, Literal
from urllib.parse import urlsplit

from pydantic import (
    AliasChoices,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    DotEnvSettingsSource,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from weatherpipe.errors import SettingsError
from weatherpipe.events import YEARS
from weatherpipe.rawzone import naming
from weatherpipe.redact import masked
from weatherpipe.topic_name import TOPIC_NAME

LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
# Where the cluster profile's three brokers listen unless KAFKA_BOOTSTRAP_SERVERS says otherwise.
CLUSTER_BOOTSTRAP_SERVERS = "localhost:9192,localhost:9193,localhost:9194"

ALIASES: Final = {"raw_dir": "raw_root", "database_url": "pg_dsn"}
"""Setting -> the original project's name for it, read as well (see `_AliasConflicts`)."""


class Settings(BaseSettings):
    """weatherpipe's configuration; each field is the environment variable of the same name,
    and the docstring under it is what `weatherpipe settings` shows as its meaning."""

    # Not use_attribute_docstrings: it parses this module's source at every start, a good part
    # of a command's start-up, for text only `weatherpipe settings` shows (see `meanings`).
    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        frozen=True,
    )

    # --- Kafka ------------------------------------------------------------------------------
    kafka_bootstrap_servers: str = Field("localhost:9092", min_length=1)
    """Comma-separated host:port list of the Kafka brokers."""

    kafka_topic: str = Field("weather_data_raw", pattern=rf"^{TOPIC_NAME}$")
    """Topic the producer writes and the consumer reads."""

    kafka_group_id: str = Field("weatherpipe-raw-zone", min_length=1)
    """Consumer group of the raw-zone writer."""

    kafka_partitions: int = Field(3, ge=1, le=10_000)
    """Partitions of the topic when the producer has to create it."""

    kafka_replication_factor: int = Field(1, ge=1, le=32)
    """Replication factor of the topic when the producer has to create it."""

    local_kafka: bool | None = None
    """Start a local broker for KAFKA_BOOTSTRAP_SERVERS. Unset: yes when it points at this
    machine (localhost / 127.0.0.1), no when it points elsewhere."""

    kafka_controller_port: int = Field(9093, ge=1, le=65535)
    """Port of the local broker's KRaft controller listener (cluster profile: of the first of
    the three controllers; the others listen on the next two ports)."""

    kafka_heap: str = Field("1g", pattern=r"^[0-9]+[kKmMgG]$")
    """Java heap of the local broker (-Xmx and -Xms)."""

    java_home: Path | None = None
    """JDK the local broker runs on; unset: `java` from PATH."""

    platform_profile: Literal["lab", "cluster"] = "lab"
    """What `weatherpipe platform up` starts. `lab`: one KRaft node (broker and controller in
    one process) over PLAINTEXT, PostgreSQL over TCP. `cluster`: 3 KRaft controllers and 3
    brokers in separate processes, TLS with a local CA, SASL/SCRAM-SHA-512 logins, ACLs,
    topics with replication factor 3 and min.insync.replicas 2, and PostgreSQL requiring TLS.
    On `cluster`, KAFKA_BOOTSTRAP_SERVERS defaults to localhost:9192,localhost:9193,
    localhost:9194 (one broker per entry) and KAFKA_REPLICATION_FACTOR to 3."""

    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] | None = None
    """How the Kafka clients talk to the brokers. Unset: SASL_SSL on the local cluster profile,
    else PLAINTEXT. Managed services (Amazon MSK with SCRAM, Confluent Cloud) need SASL_SSL."""

    kafka_sasl_mechanism: Literal["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"] = "SCRAM-SHA-512"
    """SASL mechanism of the Kafka login (Confluent Cloud API keys: PLAIN)."""

    kafka_sasl_username: str | None = Field(None, min_length=1)
    """Kafka login of every client this process runs (Confluent Cloud: the API key). Unset on
    the local cluster profile: each client logs in as its own generated user (producer,
    consumer, dashboard, admin), each allowed only what it needs."""

    kafka_sasl_password: SecretStr | None = None
    """Its password (Confluent Cloud: the API secret)."""

    kafka_ssl_ca_location: Path | None = None
    """CA certificate file (PEM) that signed the brokers' certificates. Unset: the local CA on
    the cluster profile, else the system's CA certificates (enough for MSK and Confluent
    Cloud)."""

    kafka_cluster_broker_heap: str = Field("512m", pattern=r"^[0-9]+[kKmMgG]$")
    """Java heap of each broker of the local cluster profile."""

    kafka_cluster_controller_heap: str = Field("256m", pattern=r"^[0-9]+[kKmMgG]$")
    """Java heap of each KRaft controller of the local cluster profile."""

    # --- Files ------------------------------------------------------------------------------
    csv_path: Path = Path("data/weather_data.csv")
    """The weather CSV (Kaggle prasad22/weather-data format) the producer reads."""

    raw_dir: Path = Field(
        Path("data/raw"), validation_alias=AliasChoices("raw_dir", ALIASES["raw_dir"])
    )
    """Root of the append-only raw zone (NDJSON files). RAW_ROOT (the original project's name)
    is read too."""

    rotate_mb: float = Field(32, gt=0)
    """A raw file is finished once it passes this many MiB."""

    rotate_seconds: float = Field(300, gt=0)
    """A raw file is finished once it is this old, so data shows up at low traffic."""

    state_dir: Path = Path(".weatherpipe")
    """Where the local platform keeps its data, logs, pid files and the Kafka jars."""

    kafka_lib_dir: Path | None = None
    """Folder of the local broker's jars; unset: STATE_DIR/kafka/lib."""

    # --- PostgreSQL -------------------------------------------------------------------------
    database_url: str | None = Field(
        None,
        repr=False,
        validation_alias=AliasChoices("database_url", ALIASES["database_url"]),
    )
    """URL of an existing PostgreSQL (postgresql://user:password@host:port/db). Unset: the
    embedded local server that `weatherpipe platform up` starts. PG_DSN (the original
    project's name) is read too. Its password is shown as *** wherever weatherpipe prints the
    URL."""

    postgres_port: int = Field(5432, ge=1, le=65535)
    """Port of the embedded local PostgreSQL on 127.0.0.1."""

    postgres_db: str = Field("weather_data", pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
    """Database of the embedded local PostgreSQL."""

    postgres_user: str = Field("weatherpipe", pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
    """Superuser of the embedded local PostgreSQL."""

    postgres_password: SecretStr | None = None
    """Its password; unset: one is generated on first start and kept in STATE_DIR (mode 600)."""

    # --- Platform ---------------------------------------------------------------------------
    startup_timeout: float = Field(120, gt=0)
    """Seconds `platform up` waits for each service to answer."""

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "WARNING"
    """Log level of weatherpipe's own messages. The libraries' logs (librdkafka, Streamlit,
    Spark's py4j) show only their errors, unless this is DEBUG."""

    # --- Producer ---------------------------------------------------------------------------
    producer_compression: Literal["lz4", "zstd", "snappy", "gzip", "none"] = "lz4"
    """Compression of the producer's record batches."""

    producer_linger_ms: int = Field(20, ge=0, le=60_000)
    """Milliseconds the producer waits to fill a batch before sending it."""

    producer_batch_bytes: int = Field(1_000_000, ge=1_000, le=100_000_000)
    """Largest record batch the producer sends to one partition, in bytes."""

    producer_delivery_timeout_s: float = Field(120, gt=0)
    """Seconds a record may take to be acknowledged before it counts as failed."""

    event_year_min: int = Field(YEARS[0], ge=1, le=9999)
    """Earliest year an event may have; a row or raw line of an earlier year is rejected
    (out_of_range, timestamp) by the producer and the batch alike."""

    event_year_max: int = Field(YEARS[1], ge=1, le=9999)
    """Latest year an event may have (see EVENT_YEAR_MIN)."""

    produce_daily_state: Path | None = None
    """State file of `produce --daily` (the last event day sent); unset:
    STATE_DIR/produce/<KAFKA_TOPIC>.daily.json."""

    # --- Raw-zone consumer ------------------------------------------------------------------
    consume_batch_size: int = Field(10_000, ge=1, le=1_000_000)
    """Most records the raw-zone consumer takes from Kafka per call (one write per file)."""

    consume_workers: int = Field(1, ge=1, le=64)
    """Processes `weatherpipe consume` runs as members of one consumer group, each owning some
    partitions (at most one per partition is used). One Python process stores on one core;
    more workers use more cores (figures in bench/results.md)."""

    consume_until_idle: float | None = Field(None, gt=0)
    """Let `weatherpipe consume` finish its files and exit once no record arrived for this
    many seconds; unset: run until stopped (SIGTERM / Ctrl-C)."""

    kafka_group_instance_id: str | None = Field(None, min_length=1, max_length=200)
    """This machine's name in the raw-zone consumer group. Every consumer joins as a static
    member named after it, the RAW_DIR and a slot, so one restarted after a crash takes its
    partitions over at once instead of waiting for the dead one's session to expire (45 s).
    Unset: the host name. Set it where the host name changes on every start (some
    containers) or is shared by two machines writing the same RAW_DIR path."""

    # --- batch ----------------------------------------------------------------------------
    batch_engine: Literal["duckdb", "spark"] = "duckdb"
    """Engine that reads the raw zone and aggregates it (Spark comes as a second choice)."""

    batch_threads: int | None = Field(None, ge=1, le=1024)
    """Threads of the DuckDB engine; unset: one per CPU core."""

    batch_lock_wait: float = Field(600, ge=0)
    """Seconds a one-off `weatherpipe batch` waits for a run still in progress to finish
    before giving up (scheduled runs skip a tick instead)."""

    batch_db_user: str = Field("weatherpipe_batch", pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
    """PostgreSQL login the batch writes with (created by the batch as the administrator)."""

    batch_db_password: SecretStr | None = None
    """Its password; unset: one is generated once and kept in STATE_DIR/db (mode 600)."""

    dashboard_db_user: str = Field(
        "weatherpipe_dashboard", pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,62}$"
    )
    """PostgreSQL login the dashboard reads with; it can only SELECT."""

    dashboard_db_password: SecretStr | None = None
    """Its password; unset: one is generated once and kept in STATE_DIR/db (mode 600). Set it
    when the dashboard runs where it cannot see the batch's STATE_DIR (another container)."""

    # --- dashboard --------------------------------------------------------------------------
    dashboard_port: int = Field(8501, ge=1, le=65535)
    """Port `weatherpipe dashboard` serves on (http://localhost:PORT)."""

    dashboard_cache_seconds: float = Field(30, ge=0)
    """Seconds the dashboard reuses a query's result before asking PostgreSQL or Kafka again."""

    dashboard_timeout: float = Field(3, gt=0)
    """Seconds the dashboard waits for PostgreSQL or Kafka before showing that it is down."""

    # --- spark ------------------------------------------------------------------------------
    spark_master: str = Field("local[*]", min_length=1)
    """Spark master of `weatherpipe batch --engine spark`: local[*] (this machine, one thread
    per core), spark://host:7077 (a standalone cluster), yarn, k8s://..."""

    spark_raw_uri: str | None = None
    """The raw zone as the Spark executors read it: any Hadoop URI (file:///shared/raw,
    s3a://bucket/raw, hdfs://...). Unset: RAW_DIR. The driver lists the files at RAW_DIR."""

    spark_driver_memory: str = Field("2g", pattern=r"^[0-9]+[kKmMgG]$")
    """Memory of the Spark driver (it collects only the per-day sums and rejected lines)."""

    spark_executor_memory: str = Field("1g", pattern=r"^[0-9]+[kKmMgG]$")
    """Memory of each Spark executor (a raw file is read whole, ROTATE_MB at most)."""

    @model_validator(mode="before")
    @classmethod
    def _cluster_defaults(cls, data: Any) -> Any:
        """The cluster profile's own defaults for the values it changes, unless they are set."""
        if isinstance(data, dict) and data.get("platform_profile") == "cluster":
            data = {
                "kafka_bootstrap_servers": CLUSTER_BOOTSTRAP_SERVERS,
                "kafka_replication_factor": 3,
                **data,
            }
        return data

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The usual sources in the usual order, after a check that reads none of them itself.
        check = _AliasConflicts(settings_cls, env_settings, dotenv_settings)
        return check, init_settings, env_settings, dotenv_settings, file_secret_settings

    @field_validator("kafka_bootstrap_servers")
    @classmethod
    def _servers_have_ports(cls, value: str) -> str:
        for server in value.split(","):
            host, sep, port = server.strip().rpartition(":")
            if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise ValueError(f"{server.strip()!r} is not host:port (e.g. localhost:9092)")
        return value

    @field_validator("kafka_topic")
    @classmethod
    def _topic_is_no_raw_zone_folder(cls, value: str) -> str:
        if naming.is_reserved(value):
            raise ValueError(
                "must not start with '.': the topic names its folder in RAW_DIR, where "
                f"{naming.TEMP_DIR_NAME} and {naming.DAMAGED_DIR_NAME} are the raw zone's own "
                "(and '.' or '..' are no folder of their own); choose another topic name"
            )
        return value

    @field_validator("database_url")
    @classmethod
    def _url_is_postgres(cls, value: str | None) -> str | None:
        if value is not None and urlsplit(value).scheme not in ("postgresql", "postgres"):
            hint = ""
            if "=" in value and "://" not in value:  # libpq's key=value form, as PG_DSN may be
                hint = "; write a key=value DSN (host=... dbname=...) as such a URL"
            raise ValueError(
                f"must start with postgresql:// (e.g. postgresql://u:p@host:5432/db){hint}"
            )
        return value

    @model_validator(mode="after")
    def _years_in_order(self) -> Settings:
        if self.event_year_min > self.event_year_max:
            raise ValueError(
                f"EVENT_YEAR_MIN ({self.event_year_min}) is after EVENT_YEAR_MAX "
                f"({self.event_year_max})"
            )
        return self

    @property
    def event_years(self) -> tuple[int, int]:
        """The years (inclusive) an event may have."""
        return self.event_year_min, self.event_year_max

    @property
    def kafka_port(self) -> int:
        """Port of the first bootstrap server: the one the local broker listens on."""
        return int(self.kafka_bootstrap_servers.split(",")[0].rpartition(":")[2])

    @property
    def manages_kafka(self) -> bool:
        """Whether `platform up` starts a broker rather than using an existing one."""
        if self.local_kafka is not None:
            return self.local_kafka
        host = self.kafka_bootstrap_servers.split(",")[0].rpartition(":")[0].strip("[]")
        return host in LOCAL_HOSTS

    @property
    def local_cluster(self) -> bool:
        """Whether the Kafka clients talk to the local cluster profile (its CA, its logins)."""
        return self.platform_profile == "cluster" and self.manages_kafka

    @property
    def manages_postgres(self) -> bool:
        """Whether `platform up` starts the embedded PostgreSQL rather than using DATABASE_URL."""
        return self.database_url is None

    @cached_property
    def kafka_lib(self) -> Path:
        return self.kafka_lib_dir or self.state_dir / "kafka" / "lib"


class _AliasConflicts(PydanticBaseSettingsSource):
    """Refuses a setting and its alias set to different values.

    pydantic-settings takes the first name of an `AliasChoices` it finds and never says that
    the other one was set too; a user moving from the original project could then write to one
    database while believing it is the other. Each name is resolved as pydantic-settings
    resolves it (the environment wins over .env), then the two are compared."""

    def __init__(
        self,
        settings_cls: type[BaseSettings],
        env: PydanticBaseSettingsSource,
        dotenv: PydanticBaseSettingsSource,
    ) -> None:
        super().__init__(settings_cls)
        self._sources = [s for s in (env, dotenv) if isinstance(s, EnvSettingsSource)]
        # DotEnvSettingsSource derives from EnvSettingsSource; the environment comes first.
        self._sources.sort(key=lambda s: isinstance(s, DotEnvSettingsSource))

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def _value(self, name: str) -> str | None:
        for source in self._sources:
            found = _lookup(source.env_vars, name, source.case_sensitive)
            if found is not None:
                return found
        return None

    def __call__(self) -> dict[str, Any]:
        for setting, alias in ALIASES.items():
            ours, theirs = self._value(setting), self._value(alias)
            if ours is None or theirs is None or _same(setting, ours, theirs):
                continue
            raise SettingsError(
                f"{setting.upper()}={ours!r} and {alias.upper()}={theirs!r} are both set: "
                f"{alias.upper()} is the original project's name for {setting.upper()}, so "
                f"weatherpipe reads either, but they differ. Unset one of them (in the "
                f"environment or .env) and run again."
            )
        return {}


def _lookup(env: Mapping[str, str | None], name: str, case_sensitive: bool | None) -> str | None:
    return env.get(name if case_sensitive else name.lower())


def _same(setting: str, ours: str, theirs: str) -> bool:
    if setting == "raw_dir":  # data/raw and ./data/raw are one folder
        return Path(ours) == Path(theirs)
    return ours == theirs


def meanings() -> dict[str, str]:
    """Each setting's meaning, from the docstring under its field, on one line."""
    import ast
    import inspect
    import textwrap

    body = ast.parse(textwrap.dedent(inspect.getsource(Settings))).body[0]
    assert isinstance(body, ast.ClassDef)
    found = {}
    for node, after in zip(body.body, body.body[1:], strict=False):
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and isinstance(after, ast.Expr)
            and isinstance(after.value, ast.Constant)
            and isinstance(after.value.value, str)
        ):
            found[node.target.id] = " ".join(after.value.value.split())
    return found


def _variable(loc: tuple[int | str, ...]) -> str:
    return str(loc[0]).upper() if loc else "?"


def _alias_note(loc: tuple[int | str, ...]) -> str:
    """For a setting with an alias: which names the value may have come from."""
    alias = ALIASES.get(str(loc[0])) if loc else None
    return f" (set as {_variable(loc)} or {alias.upper()})" if alias else ""


def _shown(value: object) -> str:
    """A setting's value as an error message shows it: quoted, any password masked."""
    return masked(repr(value))


def load_settings(**overrides: object) -> Settings:
    """Read the settings from the environment; an invalid value raises `SettingsError` naming
    the variable, its value and what is expected."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        lines = [
            # An error of no one field (two fields that disagree) names them in its message.
            f"  {_variable(loc)}={_shown(err.get('input'))}{_alias_note(loc)}: {err['msg']}"
            if loc
            else f"  {err['msg'].removeprefix('Value error, ')}"
            for err in exc.errors()
            for loc in [err["loc"]]
        ]
        raise SettingsError(
            "Invalid setting(s):\n" + "\n".join(lines) + "\nFix the environment variable(s) "
            "(or .env) and run again; `weatherpipe settings` lists them all."
        ) from exc
