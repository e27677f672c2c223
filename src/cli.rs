//! The operator's command line: `serve`, `migrate`, `seed`, `export`, `import`, `user create`,
//! `token create`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};

use crate::auth::{generate_api_key, generate_token, hash_secret};
use crate::domain::types::{bounded, now};
use crate::domain::{Email, Id, User, catalog, tokens};
use crate::store::export::Export;
use crate::store::{DEFAULT_CREDENTIAL_TTL, PgStore, SqliteStore, Store, StoreError};
use crate::{api, fixture, log_output, server};

#[derive(Parser)]
#[command(
    name = "roster",
    version,
    about = "A Cloudflare-compatible memberships and account members server"
)]
pub struct Cli {
    #[command(flatten)]
    pub db: Database,
    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// The command line, with the database chosen as an operator expects: a flag given on
    /// the command line beats the environment (`--database roster.db` while `DATABASE_URL`
    /// is set means the SQLite file), and naming two databases at once, both as flags or
    /// both in the environment, is refused rather than resolved silently.
    pub fn parse_args() -> Cli {
        use clap::parser::ValueSource::{CommandLine, EnvVariable};
        use clap::{CommandFactory, FromArgMatches};
        let matches = Cli::command().get_matches();
        let mut cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
        match (
            matches.value_source("database"),
            matches.value_source("database_url"),
        ) {
            (Some(CommandLine), Some(CommandLine)) => Cli::command()
                .error(
                    clap::error::ErrorKind::ArgumentConflict,
                    "--database and --database-url name two databases: give one",
                )
                .exit(),
            (Some(EnvVariable), Some(EnvVariable)) => Cli::command()
                .error(
                    clap::error::ErrorKind::ArgumentConflict,
                    "ROSTER_DATABASE and DATABASE_URL name two databases: unset one",
                )
                .exit(),
            (Some(CommandLine), Some(EnvVariable)) => cli.db.database_url = None,
            _ => {}
        }
        if let Command::Serve {
            port: Some(port), ..
        } = &cli.command
        {
            Cli::command()
                .error(
                    clap::error::ErrorKind::UnknownArgument,
                    format!("serve has no --port: give --listen 127.0.0.1:{port} (an address and a port)"),
                )
                .exit()
        }
        if let Command::Serve {
            ephemeral: true, ..
        } = cli.command
        {
            // The environment may name the database a deployment uses; a flag here says
            // this run wants another, so only a flag conflicts.
            let named = |arg| matches.value_source(arg) == Some(CommandLine);
            if named("database") || named("database_url") {
                Cli::command()
                    .error(
                        clap::error::ErrorKind::ArgumentConflict,
                        "--ephemeral keeps everything in memory: give no --database or --database-url",
                    )
                    .exit()
            }
            cli.db.database = PathBuf::from(":memory:");
            cli.db.database_url = None;
        }
        cli
    }
}

#[derive(Args)]
pub struct Database {
    /// SQLite database file, created and migrated on start.
    #[arg(
        long,
        global = true,
        env = "ROSTER_DATABASE",
        default_value = "roster.db"
    )]
    pub database: PathBuf,
    /// PostgreSQL URL (postgres://...); takes the place of the SQLite file. Several
    /// `roster serve` processes may share one database. Several hosts, tried in order
    /// (postgres://u@h1:5432,h2:5432/db?target_session_attrs=read-write), follow a
    /// failover to whichever accepts writes; sslmode and sslrootcert set TLS.
    #[arg(long, global = true, env = "DATABASE_URL")]
    pub database_url: Option<String>,
    /// PostgreSQL: connections this process takes for requests (three parts for
    /// transactions to one for single reads; one more listens for other processes'
    /// changes, and with several hosts one more watches for a failover). N processes take
    /// N x (this + 1), or N x (this + 2), of the server's max_connections.
    #[arg(long, global = true, env = "ROSTER_DATABASE_POOL_SIZE", default_value_t = 24, value_parser = clap::value_parser!(u32).range(2..=10_000))]
    pub database_pool_size: u32,
    /// PostgreSQL: seconds a request waits for a free connection before it is answered
    /// 503 with Retry-After.
    #[arg(long, global = true, env = "ROSTER_DATABASE_POOL_WAIT", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=300))]
    pub database_pool_wait: u64,
    /// PostgreSQL: what --database-url reaches. `transaction`: a transaction-mode pooler
    /// (pgbouncer), through which no session state is kept: statements go unnamed, and
    /// migrations and LISTEN need --database-listen-url.
    #[arg(long, global = true, env = "ROSTER_DATABASE_POOLER", value_enum, default_value_t = PoolerMode::None)]
    pub database_pooler: PoolerMode,
    /// PostgreSQL behind a transaction pooler: a direct URL (past the pooler), for the
    /// migrations and for LISTEN on other processes' credential changes. Without it, the
    /// database must be migrated already, and other processes' credential changes reach
    /// this one within --credential-cache.
    #[arg(long, global = true, env = "ROSTER_DATABASE_LISTEN_URL")]
    pub database_listen_url: Option<String>,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PoolerMode {
    /// Each connection is a session of its own (a direct connection, or a session pooler).
    None,
    /// A transaction-mode pooler: a server connection per transaction.
    Transaction,
}

impl Database {
    /// Which database this is, for the operator: the SQLite file, or PostgreSQL's host and
    /// database (never its password).
    pub fn describe(&self) -> String {
        match self
            .database_url
            .as_deref()
            .map(str::parse::<crate::store::PgUrl>)
        {
            Some(Ok(url)) => {
                let hosts: Vec<&str> = url.hosts.iter().map(|h| h.name.as_str()).collect();
                let database = url.hosts[0].options.get_database().unwrap_or_default();
                let attrs = match url.attrs {
                    crate::store::SessionAttrs::Any => String::new(),
                    attrs => format!(" (target_session_attrs={attrs})"),
                };
                format!("PostgreSQL {}/{database}{attrs}", hosts.join(","))
            }
            Some(Err(_)) => "PostgreSQL".to_string(),
            None if crate::store::sqlite_in_memory(&self.database) => {
                "SQLite in memory (nothing is written to disk; it ends with the process)".into()
            }
            None => format!("SQLite {}", self.database.display()),
        }
    }

    /// Opens the database; `ttl` is how long a verified credential is trusted (see
    /// `serve --credential-cache`; one-shot commands trust nothing).
    pub async fn open(&self, ttl: Duration) -> anyhow::Result<Arc<dyn Store>> {
        match &self.database_url {
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                let root_cert = url::Url::parse(url).ok().and_then(|u| {
                    u.query_pairs()
                        .find(|(k, _)| k == "sslrootcert")
                        .map(|(_, v)| v.into_owned())
                });
                let url: crate::store::PgUrl = url
                    .parse()
                    .map_err(|e| anyhow::anyhow!("--database-url is not a PostgreSQL URL: {e}"))?;
                let budget = crate::store::PoolBudget {
                    size: self.database_pool_size,
                    wait: Duration::from_secs(self.database_pool_wait),
                };
                let direct = match &self.database_listen_url {
                    Some(url) => Some(url.parse().map_err(|e| {
                        anyhow::anyhow!("--database-listen-url is not a PostgreSQL URL: {e}")
                    })?),
                    None => None,
                };
                let pooler = crate::store::Pooler {
                    transaction: self.database_pooler == PoolerMode::Transaction,
                    direct,
                };
                match PgStore::open_sized(url.clone(), ttl, budget, pooler).await {
                    Ok(store) => Ok(Arc::new(store)),
                    Err(e) => Err(explain_postgres_error(e, &url, root_cert.as_deref())),
                }
            }
            // Not echoed: a URL may carry a password.
            Some(_) => bail!("--database-url must be a postgres:// or postgresql:// URL"),
            None => {
                let parent = self.database.parent().filter(|p| !p.as_os_str().is_empty());
                if let Some(dir) = parent
                    && !crate::store::sqlite_in_memory(&self.database)
                    && !dir.is_dir()
                {
                    bail!(
                        "the directory {} of --database {} does not exist: create it, or name a file in one that does",
                        dir.display(),
                        self.database.display()
                    );
                }
                Ok(Arc::new(
                    SqliteStore::open(&self.database, ttl)
                        .await
                        .with_context(|| format!("opening {}", self.database.display()))?,
                ))
            }
        }
    }
}

#[derive(Subcommand)]
pub enum Command {
    /// Serve the API under /client/v4.
    Serve {
        /// Address and port to listen on (a host name such as localhost:8080 works too).
        #[arg(long, env = "ROSTER_LISTEN", default_value = "127.0.0.1:8080")]
        listen: String,
        /// Seconds a verified API key or token is trusted without asking the database again.
        /// This process's own changes to users and tokens apply at once; another process's
        /// (sharing a PostgreSQL database) within this many seconds. 0 asks every time.
        #[arg(
            long,
            env = "ROSTER_CREDENTIAL_CACHE",
            default_value_t = DEFAULT_CREDENTIAL_TTL.as_secs()
        )]
        credential_cache: u64,
        /// Load the documentation's demo data, unless the demo account exists already;
        /// turns the emulator on.
        #[arg(long)]
        demo: bool,
        /// Serve the control plane for test suites under /_roster/: reset to the seeded
        /// state (the demo and --seed), snapshots, the clock, injected faults and the
        /// journal of requests (docs/emulator.md). Not for production.
        #[arg(long, env = "ROSTER_EMULATOR")]
        emulator: bool,
        /// A fixture file (as `roster seed` takes) loaded at start; with the emulator,
        /// reset goes back to it. Give each user an `api_key` to keep their key across
        /// resets.
        #[arg(long)]
        seed: Option<PathBuf>,
        /// Keep everything in memory and write no file: the data ends with the process.
        #[arg(long)]
        ephemeral: bool,
        /// Log one JSON object per line instead of text.
        #[arg(long, env = "ROSTER_LOG_JSON")]
        log_json: bool,
        /// Once requests are answered, write `{"url", "api", "port", "pid"}` (JSON; with
        /// --demo, also `"demo": {"email", "api_key", "account_id"}`) to this file, whole or
        /// not at all, and remove it at a clean stop: how a test harness learns the port of
        /// `--listen 127.0.0.1:0` without reading the log.
        #[arg(long, value_name = "FILE")]
        ready_file: Option<PathBuf>,
        /// Stop (gracefully, as on SIGTERM) when standard input reaches its end: a test
        /// harness that keeps a pipe to it open stops the server by exiting, however it
        /// exits. What is read is ignored.
        #[arg(long)]
        stop_when_stdin_closes: bool,
        /// Not an option: taken only to point whoever tries it at --listen.
        #[arg(long, hide = true)]
        port: Option<String>,
        #[command(flatten)]
        limits: LimitArgs,
    },
    /// Apply the database migrations and exit (`serve` applies them at start too).
    Migrate,
    /// Load users, accounts and memberships from a JSON fixture file.
    Seed {
        /// The fixture file (JSON; docs/operations.md, "Fixture format", shows its form).
        file: PathBuf,
    },
    /// Write every row of the database as JSON (secrets stay hashed, but keep the file as
    /// private as the database), to move a deployment to another database.
    Export {
        /// Where to write; standard output when absent.
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// Load an export into a new, empty database: all of it, or nothing.
    Import {
        /// The file `roster export` wrote.
        file: PathBuf,
        /// Leave the planner without statistics (no ANALYZE), as a database grown through
        /// the API is: what `bench/run` measures.
        #[arg(long)]
        no_analyze: bool,
    },
    /// Manage users.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage API tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Print a completion script for a shell, e.g. `roster completions bash >
    /// /etc/bash_completion.d/roster`.
    Completions {
        /// The shell to complete in.
        shell: clap_complete::Shell,
    },
}

#[derive(Args)]
pub struct LimitArgs {
    /// Requests per user per --rate-limit-window, as Cloudflare's API allows; 0 switches
    /// rate limiting off (for test suites).
    #[arg(long, env = "ROSTER_RATE_LIMIT", default_value_t = 1200)]
    rate_limit: u32,
    /// Failed authentications allowed per client address per minute (a third of them for
    /// one email) before the address gets 429 until its allowance refills; 0 switches this
    /// off.
    #[arg(long, env = "ROSTER_FAILED_AUTH_LIMIT", default_value_t = 60)]
    failed_auth_limit: u32,
    /// The rate limit's window, in seconds.
    #[arg(long, env = "ROSTER_RATE_LIMIT_WINDOW", default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..))]
    rate_limit_window: u64,
    /// Request bodies over this many bytes get 413.
    #[arg(long, env = "ROSTER_MAX_BODY_BYTES", default_value_t = 1 << 20)]
    max_body_bytes: usize,
    /// Seconds a connection may take to send a request's headers, or sit idle between
    /// requests, before it is closed.
    #[arg(long, env = "ROSTER_HEADER_TIMEOUT", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..))]
    header_timeout: u64,
    /// Connections open at once; past it, new ones wait until one closes, and a connection
    /// idle for a second gives up its place to a waiting one.
    #[arg(long, env = "ROSTER_MAX_CONNECTIONS", default_value_t = server::DEFAULT_MAX_CONNECTIONS as u64, value_parser = clap::value_parser!(u64).range(1..))]
    max_connections: u64,
    /// Days an invitation can be accepted after it was made (Cloudflare's are 7); after
    /// that it can only be rejected.
    #[arg(long, env = "ROSTER_INVITATION_TTL_DAYS", default_value_t = 7, value_parser = clap::value_parser!(u64).range(1..=3650))]
    invitation_ttl_days: u64,
    /// Seconds a request may take, reading its body included, before it gets 408.
    #[arg(long, env = "ROSTER_REQUEST_TIMEOUT", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..))]
    request_timeout: u64,
    /// Leave out the web console (served at /console/, with / sending browsers there).
    #[arg(long, env = "ROSTER_NO_CONSOLE")]
    no_console: bool,
}

impl LimitArgs {
    fn limits(&self) -> api::Limits {
        api::Limits {
            rate: std::num::NonZeroU32::new(self.rate_limit)
                .map(|n| (n, Duration::from_secs(self.rate_limit_window))),
            max_body_bytes: self.max_body_bytes,
            request_timeout: Duration::from_secs(self.request_timeout),
            failed_auth: std::num::NonZeroU32::new(self.failed_auth_limit),
            invitation_ttl: Duration::from_secs(self.invitation_ttl_days * 86_400),
            console: !self.no_console,
        }
    }
}

#[derive(Subcommand)]
pub enum UserCommand {
    /// Create a user and print their global API key (shown once).
    Create {
        /// The user's email address, which signs them in with the key printed.
        #[arg(long)]
        email: String,
        /// The user's first name.
        #[arg(long)]
        first_name: Option<String>,
        /// The user's last name.
        #[arg(long)]
        last_name: Option<String>,
        /// Mark the user as having two-factor authentication enabled.
        #[arg(long)]
        two_factor: bool,
    },
}

#[derive(Subcommand)]
pub enum TokenCommand {
    /// Create an API token for a user and print it (shown once).
    Create {
        /// The email of the user the token acts for.
        #[arg(long)]
        email: String,
        /// Permission group names, e.g. "Account Settings Read" (repeatable).
        #[arg(long = "permission-group", required = true)]
        permission_groups: Vec<String>,
        /// The token's name, as the API lists it.
        #[arg(long, default_value = "roster token")]
        name: String,
        /// When the token stops working (RFC 3339, e.g. 2027-01-01T00:00:00Z).
        #[arg(long)]
        expires_on: Option<String>,
    },
}

/// Connections made once the listener is bound wait in its backlog, so the file can be
/// written before the accept loop starts.
fn write_ready_file(
    file: PathBuf,
    addr: std::net::SocketAddr,
    demo: bool,
) -> anyhow::Result<PathBuf> {
    let url = format!("http://{addr}");
    let mut body = serde_json::json!({
        "url": url,
        "api": format!("{url}{}", api::PREFIX),
        "port": addr.port(),
        "pid": std::process::id(),
    });
    if demo {
        // The documentation's own demo credentials, as the log prints them.
        let (email, api_key) = fixture::demo_credentials();
        body["demo"] = serde_json::json!({
            "email": email,
            "api_key": api_key,
            "account_id": fixture::demo_account_id(),
        });
    }
    // Created exclusively, readable by its owner only, under a random name: nobody can
    // plant the temporary file, and a reader sees the whole file or none.
    let dir = match file.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => std::path::Path::new("."),
    };
    let written = tempfile::NamedTempFile::new_in(dir).and_then(|mut partial| {
        use std::io::Write;
        writeln!(partial, "{body}")?;
        partial.persist(&file).map_err(|e| e.error)?;
        Ok(())
    });
    written.with_context(|| format!("writing the ready file {}", file.display()))?;
    Ok(file)
}

/// A failure to open PostgreSQL, said as an operator acts on it: where it tried (never the
/// password), and for the common first-run mistakes (no database, no server, TLS set up
/// differently at either end) what to do. `root_cert` is the URL's `sslrootcert`.
fn explain_postgres_error(
    e: StoreError,
    url: &crate::store::PgUrl,
    root_cert: Option<&str>,
) -> anyhow::Error {
    let options = &url.hosts[0].options;
    let (host, port) = (options.get_host(), options.get_port());
    let database = options.get_database().unwrap_or("(the user's name)");
    let hosts: Vec<&str> = url.hosts.iter().map(|h| h.name.as_str()).collect();
    let at = format!("PostgreSQL at {}, database {database}", hosts.join(","));
    match &e {
        StoreError::Database(sqlx::Error::Database(db))
            if db.code().as_deref() == Some("3D000") =>
        {
            anyhow::anyhow!(
                "{at}: the database does not exist: create it (createdb -h {host} -p {port} {database}), or name another in --database-url"
            )
        }
        // pg_hba.conf has hostssl lines only for this client.
        StoreError::Database(sqlx::Error::Database(db))
            if db.code().as_deref() == Some("28000") && db.message().ends_with("no encryption") =>
        {
            anyhow::anyhow!(
                "{at}: {}: the server takes only TLS connections from here: give sslmode=verify-full and sslrootcert=(its authority's certificate) in --database-url",
                db.message()
            )
        }
        StoreError::Database(sqlx::Error::Database(db)) => {
            // Its Display ends in PostgreSQL's own source line ("at line 948"): only the message.
            anyhow::anyhow!("{at}: {}", db.message())
        }
        // rustls refused the server's certificate; its own words are terse.
        StoreError::Database(sqlx::Error::Io(io))
            if io.to_string().starts_with("invalid peer certificate: ") =>
        {
            let problem = io.to_string()["invalid peer certificate: ".len()..].to_string();
            let why = match (problem.as_str(), root_cert) {
                ("UnknownIssuer", Some(file)) => format!(
                    "it is not signed by the authority whose certificate sslrootcert names ({file})"
                ),
                ("UnknownIssuer", None) => "it is not signed by a public authority: name your own authority's certificate in sslrootcert".to_string(),
                (name, _) if name.starts_with("certificate not valid for name") => format!(
                    "{name}: sslmode=verify-full checks that the certificate names the host in --database-url (connect by a name it has, or verify-ca checks the authority only)"
                ),
                (other, _) => other.to_string(),
            };
            anyhow::anyhow!("{at}: the server's TLS certificate is refused: {why}")
        }
        StoreError::Database(sqlx::Error::Io(io))
            if io.kind() == std::io::ErrorKind::ConnectionRefused =>
        {
            anyhow::anyhow!(
                "{at}: connection refused: is the server running and listening on {host}:{port}?"
            )
        }
        _ => anyhow::Error::new(e).context(at),
    }
}

/// A fixture file, parsed and checked; errors start with the file's name.
fn read_fixture(file: &std::path::Path) -> anyhow::Result<fixture::Fixture> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let parsed = fixture::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    fixture::check(&parsed).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    Ok(parsed)
}

/// Loads what `serve` was given into a database that holds data already: the demo only
/// if its account is missing (after the first start it belongs to the API), a seed file
/// as `roster seed` would.
async fn load_at_start(
    store: &dyn Store,
    demo: bool,
    seed: Option<&fixture::Fixture>,
) -> anyhow::Result<()> {
    if demo && fixture::load_demo(store).await? {
        tracing::info!("demo data loaded");
    }
    if let Some(seed) = seed {
        report(&fixture::load(store, seed).await?);
    }
    Ok(())
}

/// What loading a fixture did, for the operator: the keys made for users the file gave
/// none (on standard output, as `roster user create` prints a key), and the members left
/// as the API made them.
fn report(loaded: &fixture::Loaded) {
    for note in &loaded.skipped {
        eprintln!("skipped: {note}");
    }
    for (email, key) in &loaded.generated_keys {
        println!("{email}\t{key}");
    }
}

/// An error for the operator: each cause once, on one line, without a backtrace (these
/// are expected errors: a bad path, a port in use, a database that does not answer).
/// Errors that wrap another quote it, so of each cause only the parts (between ": ") the
/// line does not say yet are added.
pub fn one_line(e: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in e.chain() {
        for part in cause.to_string().split(": ") {
            if !parts.iter().any(|p| p.contains(part)) {
                parts.push(part.to_string());
            }
        }
    }
    parts.join(": ")
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    if let Command::Completions { shell } = &cli.command {
        use clap::CommandFactory;
        use std::io::Write;
        // Generated whole first: clap_complete panics on a failed write, and a reader that
        // stops early (`| head`) is not an error.
        let mut script = Vec::new();
        clap_complete::generate(*shell, &mut Cli::command(), "roster", &mut script);
        let mut out = std::io::stdout().lock();
        return match out.write_all(&script).and_then(|()| out.flush()) {
            Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
                Err(anyhow::Error::new(e).context("writing the completion script"))
            }
            _ => Ok(()),
        };
    }
    // Held to the end: dropping it writes out the log lines still queued.
    let _log = match &cli.command {
        Command::Serve { log_json, .. } => Some(init_tracing(*log_json)),
        _ => None,
    };
    // The port first: a port in use fails at once, before any migration or loading.
    // One-shot commands trust no credential without asking the database.
    let (listener, ttl) = match &cli.command {
        Command::Serve {
            listen,
            credential_cache,
            ..
        } => (
            Some(
                tokio::net::TcpListener::bind(listen.as_str())
                    .await
                    .with_context(|| format!("listening on {listen}"))?,
            ),
            Duration::from_secs(*credential_cache),
        ),
        _ => (None, Duration::ZERO),
    };
    // A fixture is read and checked in full before the database is opened: a bad file
    // leaves no database file behind.
    let fixture = match &cli.command {
        Command::Seed { file } => Some(read_fixture(file)?),
        Command::Serve {
            seed: Some(file), ..
        } => Some(read_fixture(file)?),
        _ => None,
    };
    let store = cli.db.open(ttl).await?;
    match cli.command {
        Command::Completions { .. } => unreachable!("answered before the database is opened"),
        Command::Serve {
            demo,
            emulator,
            limits,
            ready_file,
            stop_when_stdin_closes,
            ..
        } => {
            let listener = listener.expect("bound above");
            let seed = fixture;
            let emulator = if emulator || demo {
                let demo_data =
                    demo.then(|| fixture::parse(fixture::DEMO).expect("the demo fixture is valid"));
                let fixtures: Vec<&fixture::Fixture> = demo_data.iter().chain(&seed).collect();
                let (seeded, loaded) = fixture::seeded_state(&fixtures).await?;
                // A new database starts as a reset leaves it, with the same ids and keys.
                match store.import(&seeded, true, &Default::default()).await {
                    Ok(()) => {
                        report(&loaded);
                        tracing::info!("seeded: {seeded}");
                    }
                    Err(StoreError::Import(_)) => {
                        load_at_start(store.as_ref(), demo, seed.as_ref()).await?
                    }
                    Err(e) => return Err(e.into()),
                }
                Some(Arc::new(api::emulator::Emulator::new(seeded)))
            } else {
                load_at_start(store.as_ref(), demo, seed.as_ref()).await?;
                None
            };
            let served = limits.limits();
            tracing::info!(
                "listening on http://{}{}",
                listener.local_addr()?,
                api::PREFIX
            );
            tracing::info!("database: {}", cli.db.describe());
            if served.console {
                tracing::info!(
                    "console: http://{}/console/ (--no-console leaves it out)",
                    listener.local_addr()?
                );
            }
            match served.rate {
                Some((requests, window)) => tracing::info!(
                    "rate limit: {requests} requests per user per {} s (--rate-limit 0 turns it off)",
                    window.as_secs()
                ),
                None => tracing::info!("rate limit: off"),
            }
            match emulator {
                Some(_) => tracing::info!(
                    "emulator: on, control plane at /_roster/ (reset, snapshots, clock, faults, requests)"
                ),
                None => {
                    tracing::info!("emulator: off (--emulator serves /_roster/reset and the rest)")
                }
            }
            if demo {
                // The documentation's own demo credentials (README), not a secret.
                let (email, key) = fixture::demo_credentials();
                tracing::info!("demo: X-Auth-Email {email}, X-Auth-Key {key}");
            }
            let app = api::router_with(store, &served, emulator);
            let connections = server::Connections {
                header_timeout: Duration::from_secs(limits.header_timeout),
                max: usize::try_from(limits.max_connections).unwrap_or(usize::MAX),
                ..server::Connections::default()
            };
            let shutdown = shutdown_signal(stop_when_stdin_closes);
            let ready = ready_file
                .map(|file| write_ready_file(file, listener.local_addr()?, demo))
                .transpose()?;
            server::serve(listener, app, connections, shutdown).await;
            if let Some(file) = ready {
                let _ = std::fs::remove_file(file);
            }
            tracing::info!("stopped");
            Ok(())
        }
        Command::Migrate => {
            let (version, description) = crate::store::schema_version();
            println!("database is at migration {version} ({description})");
            Ok(())
        }
        Command::Export { output } => {
            // One snapshot read, then one write: no count to show between, so each phase
            // says when it starts and what it took.
            let started = std::time::Instant::now();
            eprintln!(
                "exporting {} (reading every table in one snapshot)",
                cli.db.describe()
            );
            let data = store.export().await?;
            let read = started.elapsed().as_secs_f64();
            eprintln!("read {} rows in {read:.1} s; writing", data.rows());
            let text = serde_json::to_string(&data)?;
            match output {
                Some(path) => std::fs::write(&path, text + "\n")
                    .with_context(|| format!("writing {}", path.display()))?,
                None => println!("{text}"),
            }
            eprintln!(
                "exported {data} in {:.1} s",
                started.elapsed().as_secs_f64()
            );
            Ok(())
        }
        Command::Import { file, no_analyze } => {
            let started = std::time::Instant::now();
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            let de = &mut serde_json::Deserializer::from_str(&text);
            let data: Export = serde_path_to_error::deserialize(de)
                .with_context(|| format!("{} is not a roster export", file.display()))?;
            drop(text);
            eprintln!(
                "importing {} rows from {} (read in {:.1} s)",
                data.rows(),
                file.display(),
                started.elapsed().as_secs_f64()
            );
            let progress = Arc::new(crate::store::export::Progress::default());
            let then = if no_analyze {
                "committing"
            } else {
                "committing and gathering the planner's statistics"
            };
            let ticker = crate::progress::Ticker::start(
                "importing",
                "rows",
                then,
                data.rows(),
                progress.clone(),
            );
            let imported = store.import(&data, !no_analyze, &progress).await;
            ticker.finish().await;
            imported?;
            eprintln!(
                "imported {data} in {:.1} s",
                started.elapsed().as_secs_f64()
            );
            Ok(())
        }
        Command::Seed { file } => {
            let parsed = fixture.expect("read above");
            let progress = Arc::new(crate::store::export::Progress::default());
            let ticker = crate::progress::Ticker::start(
                "seeding",
                "steps",
                "finishing",
                fixture::steps(&parsed),
                progress.clone(),
            );
            let loaded = fixture::load_counting(store.as_ref(), &parsed, &progress).await;
            ticker.finish().await;
            report(&loaded.with_context(|| file.display().to_string())?);
            Ok(())
        }
        Command::User(UserCommand::Create {
            email,
            first_name,
            last_name,
            two_factor,
        }) => {
            let key = generate_api_key();
            let at = now();
            let user = User {
                id: Id::generate(),
                email: Email::parse(&email, "email")?,
                first_name: first_name
                    .map(|n| bounded(&n, "first_name", 0, 60))
                    .transpose()?,
                last_name: last_name
                    .map(|n| bounded(&n, "last_name", 0, 60))
                    .transpose()?,
                telephone: None,
                country: None,
                zipcode: None,
                two_factor_authentication_enabled: two_factor,
                created_on: at.clone(),
                modified_on: at,
            };
            store.insert_user(&user, &hash_secret(&key)).await?;
            println!("{key}");
            Ok(())
        }
        Command::Token(TokenCommand::Create {
            expires_on,
            email,
            permission_groups,
            name,
        }) => {
            let email = Email::parse(&email, "email")?;
            let Some((user, _)) = store.user_by_email(email.folded()).await? else {
                bail!("no user with email {}", email.as_str());
            };
            let groups = permission_groups
                .iter()
                .map(|n| {
                    catalog::permission_group_named(n)
                        .map(|g| g.id.clone())
                        .with_context(|| {
                            let hint = catalog::nearest_hint(n, &catalog::permission_group_names());
                            format!("unknown permission group {n:?}{hint}")
                        })
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let token = tokens::simple_token(&user.id, name, groups, expires_on)?;
            let secret = generate_token();
            store
                .insert_token(&token, &hash_secret(&secret), None)
                .await?;
            println!("{secret}");
            Ok(())
        }
    }
}

fn init_tracing(json: bool) -> log_output::Flush {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| "roster=info".into());
    let (writer, flush) = log_output::batched(std::io::stdout());
    // Colour codes only for a person at a terminal: in a file or a pipe they are noise,
    // and formatting them was a twentieth of a short request's CPU.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_timer(log_output::UtcMicros)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()));
    if json {
        builder.json().init();
    } else {
        builder
            .fmt_fields(log_output::PlainFields)
            .event_format(log_output::PlainLine::new(log_output::UtcMicros))
            .init();
    }
    flush
}

/// What stops the server: SIGINT, SIGTERM, or (with `stdin_closes`) the end of standard
/// input. The handlers are installed here, at once, not when the future is first polled:
/// this is called before the ready file is written, and a harness may send SIGTERM as soon
/// as it sees the file.
fn shutdown_signal(stdin_closes: bool) -> impl std::future::Future<Output = ()> {
    // A harness that holds the server's standard input open stops it by going away, even
    // when it is killed before it can send a signal. Read on a thread of its own, not
    // tokio's blocking pool: the runtime waits for its blocking tasks when it shuts down,
    // and a read of an open pipe never ends.
    let on_close = stdin_closes.then(|| {
        let (closed, on_close) = tokio::sync::oneshot::channel::<()>();
        std::thread::spawn(move || {
            use std::io::Read;
            let mut buffer = [0u8; 256];
            let mut stdin = std::io::stdin();
            while matches!(stdin.read(&mut buffer), Ok(n) if n > 0) {}
            let _ = closed.send(());
        });
        on_close
    });
    #[cfg(unix)]
    let (mut interrupt, mut terminate) = {
        use tokio::signal::unix::{SignalKind, signal};
        (
            signal(SignalKind::interrupt()).ok(),
            signal(SignalKind::terminate()).ok(),
        )
    };
    async move {
        let stdin_closed = async {
            match on_close {
                Some(on_close) => {
                    let _ = on_close.await;
                    tracing::info!("standard input closed: stopping (--stop-when-stdin-closes)");
                }
                None => std::future::pending::<()>().await,
            }
        };
        #[cfg(unix)]
        let signalled = async {
            let wait = |s: Option<tokio::signal::unix::Signal>| async move {
                match s {
                    Some(mut s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                _ = wait(interrupt.take()) => {},
                _ = wait(terminate.take()) => {},
            }
        };
        #[cfg(not(unix))]
        let signalled = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        tokio::select! {
            _ = signalled => {},
            _ = stdin_closed => {},
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::Cli;

    /// `--help` describes every flag and argument, and shows each only where it applies.
    #[test]
    fn every_flag_says_what_it_does_where_it_applies() {
        fn walk(command: &clap::Command, path: &str, seen: &mut Vec<(String, String)>) {
            for arg in command.get_arguments() {
                let id = arg.get_id().as_str();
                if id == "help" || id == "version" {
                    continue;
                }
                assert!(arg.get_help().is_some(), "{path}: {id} has no description");
                seen.push((path.to_string(), id.to_string()));
            }
            for sub in command.get_subcommands() {
                walk(sub, &format!("{path} {}", sub.get_name()), seen);
            }
        }
        let mut seen = Vec::new();
        walk(&Cli::command(), "roster", &mut seen);
        let cache: Vec<&str> = seen
            .iter()
            .filter(|(_, id)| id == "credential_cache")
            .map(|(path, _)| path.as_str())
            .collect();
        assert_eq!(cache, ["roster serve"]);
    }
}
