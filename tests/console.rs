//! The web console in a real browser (`cargo test --test console`): `roster serve --demo`
//! on a fresh database and a free port, and `tests/console/test_console.py` driving
//! Debian's Chromium (`/usr/bin/chromium`, or `ROSTER_CHROMIUM`) through Playwright, every
//! flow with JavaScript on and the forms with it off, axe-core checking each page.
//!
//! Playwright and pytest are installed on first use into `target/console-venv` (pinned by
//! `tests/console/requirements.txt`), axe-core into `target/console-node` (pinned by
//! `tests/console/package-lock.json`); Playwright never downloads a browser here. A
//! missing `python3`, `npm` or Chromium fails the test: nothing is skipped.
//! `ROSTER_CONSOLE_SHOTS=<dir>` keeps a screenshot of each page there (docs/console/ holds
//! the ones docs/console.md shows).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::{Server, TestDatabase, manifest_dir, run, target_dir};

fn sources() -> PathBuf {
    manifest_dir().join("tests").join("console")
}

/// `target/console-venv` with the pinned Playwright and pytest, made (again) unless it
/// already holds what `requirements.txt` says. Returns its python.
fn python() -> PathBuf {
    let venv = target_dir().join("console-venv");
    let python = venv.join("bin").join("python");
    let wanted = std::fs::read(sources().join("requirements.txt")).expect("requirements.txt");
    let stamp = venv.join("requirements.txt");
    if std::fs::read(&stamp).is_ok_and(|had| had == wanted) && python.exists() {
        return python;
    }
    if venv.exists() {
        std::fs::remove_dir_all(&venv).expect("remove a stale console-venv");
    }
    run(
        Command::new("python3").arg("-m").arg("venv").arg(&venv),
        "python3 -m venv (python3 with the venv module is required)",
    );
    run(
        Command::new(&python)
            .args([
                "-m",
                "pip",
                "install",
                "--disable-pip-version-check",
                "--no-input",
                "--quiet",
                "-r",
            ])
            .arg(sources().join("requirements.txt")),
        "pip install playwright pytest",
    );
    std::fs::write(&stamp, wanted).expect("stamp the console venv");
    python
}

/// `target/console-node/node_modules/axe-core/axe.min.js`, installed with `npm ci`.
fn axe() -> PathBuf {
    let dir = target_dir().join("console-node");
    let lock = std::fs::read(sources().join("package-lock.json")).expect("package-lock.json");
    let axe = dir.join("node_modules").join("axe-core").join("axe.min.js");
    let installed =
        axe.exists() && std::fs::read(dir.join("package-lock.json")).is_ok_and(|l| l == lock);
    if !installed {
        std::fs::create_dir_all(&dir).expect("create target/console-node");
        for file in ["package.json", "package-lock.json"] {
            std::fs::copy(sources().join(file), dir.join(file)).expect("copy the npm manifest");
        }
        run(
            Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
                .current_dir(&dir),
            "npm ci (node and npm are required)",
        );
    }
    axe
}

#[test]
fn every_console_flow_in_a_real_browser() {
    let chromium = std::env::var("ROSTER_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        Path::new(&chromium).exists(),
        "the console's browser tests need Chromium at {chromium} (Debian: apt-get install \
         chromium fonts-liberation; or set ROSTER_CHROMIUM); Playwright's own download is \
         never used"
    );
    let (python, axe) = (python(), axe());
    let db = TestDatabase::new();
    let server = Server::start(&db, &["--demo", "--rate-limit", "0"]);
    let mut cmd = Command::new(python);
    cmd.args(["-m", "pytest", "-q", "-p", "no:cacheprovider", "-x"])
        .arg(sources())
        .env("ROSTER_CONSOLE_URL", format!("http://{}", server.addr))
        .env("ROSTER_CHROMIUM", &chromium)
        .env("ROSTER_AXE_JS", &axe)
        .env("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
        .current_dir(sources());
    let output = cmd.stdin(Stdio::null()).output().expect("run pytest");
    let stdout = String::from_utf8_lossy(&output.stdout);
    println!("{stdout}{}", String::from_utf8_lossy(&output.stderr));
    assert!(
        output.status.success() && stdout.contains(" passed"),
        "the console's browser tests failed (their output is above); the server's log ends:\n{}",
        server.log_text()
    );
}
