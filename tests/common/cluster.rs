//! Throwaway PostgreSQL servers of the test's own, made with the server's binaries
//! (`/usr/lib/postgresql/*/bin`, Debian's layout): a primary, a streaming replica of it, a
//! server with TLS. As root (CI), the binaries run as the `postgres` user, which PostgreSQL
//! requires; each server is stopped when dropped.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// The newest PostgreSQL's binaries on the machine.
fn bin_dir() -> PathBuf {
    let mut dirs: Vec<PathBuf> = glob::glob("/usr/lib/postgresql/*/bin")
        .expect("a glob")
        .filter_map(Result::ok)
        .collect();
    // By major version, as a number: 9.6 < 10 < 15.
    dirs.sort_by_key(|d| {
        d.parent()
            .and_then(|v| v.file_name())
            .and_then(|v| v.to_str())
            .and_then(|v| v.split('.').next()?.parse::<u32>().ok())
            .unwrap_or(0)
    });
    dirs.pop().expect(
        "PostgreSQL's binaries in /usr/lib/postgresql/*/bin (Debian: apt-get install postgresql)",
    )
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .expect("id runs")
        .stdout
        == b"0\n"
}

/// `program` of PostgreSQL's, as the `postgres` user when the test runs as root.
pub fn pg_command(program: &str) -> Command {
    let path = bin_dir().join(program);
    if is_root() {
        let mut cmd = Command::new("runuser");
        cmd.args(["-u", "postgres", "--"]).arg(path);
        cmd
    } else {
        Command::new(path)
    }
}

/// Runs `cmd`, which must succeed; its output in the panic when not.
pub fn run(cmd: &mut Command) -> String {
    let out = cmd.output().expect("the command runs");
    assert!(
        out.status.success(),
        "{cmd:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A port nothing listens on now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A directory the `postgres` user may write in (the test's own are 0700 and root's).
pub fn shared_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    dir
}

/// Makes `file` the `postgres` user's (as root), readable by it alone when `private`.
pub fn give_to_postgres(file: &Path, private: bool) {
    let mode = if private { 0o600 } else { 0o644 };
    std::fs::set_permissions(file, std::fs::Permissions::from_mode(mode)).unwrap();
    if is_root() {
        run(Command::new("chown").arg("postgres:postgres").arg(file));
    }
}

/// One PostgreSQL server on 127.0.0.1, its data in a directory of its own, user `roster`
/// trusted; stopped (immediately) when dropped.
pub struct Pg {
    pub port: u16,
    pub data: PathBuf,
    dir: PathBuf,
    running: bool,
}

impl Pg {
    /// `initdb` in `dir`/`name`, with `settings` (`-c` options) for when it starts.
    pub fn init(dir: &Path, name: &str) -> Pg {
        let data = dir.join(name);
        run(pg_command("initdb")
            .args(["-U", "roster", "--auth=trust", "--no-sync", "-D"])
            .arg(&data));
        Pg {
            port: free_port(),
            data,
            dir: dir.to_owned(),
            running: false,
        }
    }

    /// A streaming copy of `primary` (`pg_basebackup -R -X stream`: it starts as a standby).
    pub fn replica_of(primary: &Pg, name: &str) -> Pg {
        let data = primary.dir.join(name);
        run(pg_command("pg_basebackup")
            .args([
                "-h",
                "127.0.0.1",
                "-U",
                "roster",
                "-R",
                "-X",
                "stream",
                "-p",
            ])
            .arg(primary.port.to_string())
            .arg("-D")
            .arg(&data));
        Pg {
            port: free_port(),
            data,
            dir: primary.dir.clone(),
            running: false,
        }
    }

    /// Starts it on its port with `settings`, and waits until it accepts connections.
    pub fn start(&mut self, settings: &[&str]) {
        let mut options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -c unix_socket_directories={}",
            self.port,
            self.dir.display()
        );
        for setting in settings {
            options.push_str(" -c ");
            options.push_str(setting);
        }
        let log = self.dir.join(format!(
            "{}.log",
            self.data.file_name().unwrap().to_string_lossy()
        ));
        run(pg_command("pg_ctl")
            .args(["-w", "-t", "60", "-D"])
            .arg(&self.data)
            .arg("-l")
            .arg(&log)
            .args(["-o", &options, "start"]));
        self.running = true;
    }

    /// `pg_ctl stop -m immediate`: as a crash, nothing flushed or said to clients.
    pub fn stop_immediately(&mut self) {
        run(pg_command("pg_ctl")
            .args(["-w", "-m", "immediate", "-D"])
            .arg(&self.data)
            .arg("stop"));
        self.running = false;
    }

    /// `pg_ctl promote`, waiting until it accepts writes.
    pub fn promote(&self) {
        run(pg_command("pg_ctl")
            .args(["-w", "-t", "60", "-D"])
            .arg(&self.data)
            .arg("promote"));
    }

    /// A URL of database `postgres` on it, with `query`.
    pub fn url(&self, query: &str) -> String {
        format!("postgres://roster@127.0.0.1:{}/postgres{query}", self.port)
    }

    /// `sql` run by psql, its output unaligned.
    pub fn psql(&self, sql: &str) -> String {
        run(Command::new(bin_dir().join("psql"))
            .args([
                "-h",
                "127.0.0.1",
                "-U",
                "roster",
                "-d",
                "postgres",
                "-Atc",
                sql,
                "-p",
            ])
            .arg(self.port.to_string()))
        .trim()
        .to_string()
    }

    /// Waits until `sql` answers `expected`, for at most 30 s.
    pub fn wait_for(&self, sql: &str, expected: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let answer = self.psql(sql);
            if answer == expected {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{sql}: {answer:?}, not {expected:?}, after 30 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Pg {
    fn drop(&mut self) {
        if self.running {
            let _ = pg_command("pg_ctl")
                .args(["-m", "immediate", "-D"])
                .arg(&self.data)
                .arg("stop")
                .output();
        }
    }
}
