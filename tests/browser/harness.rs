#![allow(dead_code)]
//! Real processes for browser tests: the tablecast binary on a real port and SQLite file, and
//! chromedriver driving Debian's headless Chromium. Everything started here is ended on drop.
use crate::kit::api::{restaurant_body, Api};
use crate::kit::process::{free_port, Proc, Stop, Tablecast};
use crate::kit::services::{CHROMEDRIVER, CHROMIUM};
use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{json, Value};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

pub use crate::kit::api::{date_in, date_in_zone, open_all_day_in, zone_at_noon};
pub use crate::kit::wait::until;
pub use crate::kit::{require, Service};

pub const ADMIN: &str = "browser-test-admin";

/// Browser tests share two cores with the build: one at a time keeps timings honest.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

pub async fn exclusive() -> tokio::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().await
}

/// Where the run keeps its screenshots: `$CARGO_TARGET_DIR/screenshots` or `target/screenshots`.
pub fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    let dir = target.join("screenshots");
    std::fs::create_dir_all(&dir).expect("screenshot folder");
    dir
}

// ---------- the app ----------

/// The tablecast binary serving one SQLite file; killed (SIGKILL, by PID) on drop.
pub struct Server {
    pub bin: Tablecast,
    pub port: u16,
    pub base: String,
    pub store: String,
    pub api: Api,
}

impl Server {
    /// Starts on `port` (0: any free one) with the store `sqlite://<db>`.
    pub fn start(db: &Path, port: u16) -> Server {
        let store = format!("sqlite://{}", db.display());
        let listen = format!("127.0.0.1:{port}");
        let bin = Tablecast::start(
            &[
                "serve",
                "--listen",
                &listen,
                "--store",
                &store,
                "--admin-token",
                ADMIN,
            ],
            &[
                ("TABLECAST_DRAIN_GRACE_SECS", "0.1"),
                ("RUST_LOG", "warn"),
                // Every browser here is one loopback client, across many tests.
                ("TABLECAST_MAX_LIVE_HOLDS_PER_CLIENT", "0"),
                ("TABLECAST_HOLD_RATE", "off"),
                ("TABLECAST_MAX_CONNECTIONS_PER_CLIENT", "0"),
            ],
            Stdio::inherit(),
        );
        Server {
            port: bin.port,
            base: bin.base.clone(),
            api: Api::new(&bin.base, ADMIN),
            bin,
            store,
        }
    }

    /// Ends the process at once, as a crash would.
    pub fn kill(&mut self) {
        self.bin.proc.kill();
    }

    pub fn url(&self, path: &str) -> String {
        self.api.url(path)
    }

    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let res = self.api.send(method, path, token, body).await;
        let status = res.status().as_u16();
        let text = res.text().await.unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Creates a restaurant; returns its id and staff token.
    pub async fn restaurant(&self, body: Value) -> (String, String) {
        let f = self.api.create_restaurant(body).await;
        (f.id, f.staff)
    }

    /// Takes a hold over HTTP (like another diner would); returns the reservation with its token.
    pub async fn hold(
        &self,
        rid: &str,
        date: &str,
        time: &str,
        party: u32,
        table: Option<&str>,
    ) -> Value {
        let mut body = json!({"date": date, "time": time, "party_size": party});
        if let Some(t) = table {
            body["table_id"] = json!(t);
        }
        let (status, v) = self
            .send(
                reqwest::Method::POST,
                &format!("/v1/restaurants/{rid}/holds"),
                None,
                Some(body),
            )
            .await;
        assert_eq!(status, 201, "hold {time}: {v}");
        v
    }

    /// The restaurant document as anyone reads it.
    pub async fn restaurant_doc(&self, rid: &str) -> Value {
        let (status, doc) = self
            .send(
                reqwest::Method::GET,
                &format!("/v1/restaurants/{rid}"),
                None,
                None,
            )
            .await;
        assert_eq!(status, 200, "{doc}");
        doc
    }

    pub async fn confirm(&self, held: &Value, name: &str) -> Value {
        let (status, v) = self
            .send(
                reqwest::Method::POST,
                &format!("/v1/reservations/{}/confirm", held["id"].as_str().unwrap()),
                held["token"].as_str(),
                Some(json!({"guest": {"name": name, "email": "guest@example.com"}})),
            )
            .await;
        assert_eq!(status, 200, "confirm: {v}");
        v
    }

    pub async fn set_status(&self, id: &str, staff: &str, status: &str) {
        let (code, v) = self
            .send(
                reqwest::Method::PATCH,
                &format!("/v1/reservations/{id}"),
                Some(staff),
                Some(json!({"status": status})),
            )
            .await;
        assert_eq!(code, 200, "{status}: {v}");
    }

    /// Moves reservation `id` `days` days back in the store's file, as if that time had passed.
    pub async fn move_back(&self, id: &str, days: i64) {
        crate::kit::app::move_back(&self.store, id, days).await;
    }

    pub async fn availability(&self, rid: &str, date: &str, party: u32) -> Value {
        self.api.availability(rid, date, party).await
    }
}

/// A restaurant in Paris, open every day 18:00–23:00, default turns (90 min for two).
pub fn paris_restaurant(name: &str, tables: Value) -> Value {
    let mut body = restaurant_body(tables);
    body["name"] = json!(name);
    body["booking_horizon_days"] = json!(30);
    body["hold_seconds"] = json!(300);
    body
}

// ---------- the browser ----------

/// chromedriver in its own process group: dropping it ends chromedriver and every Chromium it
/// started (the group's id is chromedriver's PID).
pub struct Driver {
    proc: Proc,
    pub url: String,
    profiles: Vec<tempfile::TempDir>,
}

impl Driver {
    pub async fn start() -> Driver {
        let port = free_port();
        let proc = Proc::spawn(
            Command::new(CHROMEDRIVER)
                .arg(format!("--port={port}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .process_group(0),
            Stop::KillGroup,
            "chromedriver",
        );
        let url = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        let status = format!("{url}/status");
        until(
            Duration::from_secs(20),
            "chromedriver to answer /status",
            || {
                let http = http.clone();
                let status = status.clone();
                async move {
                    let v: Value = http.get(&status).send().await.ok()?.json().await.ok()?;
                    v["value"]["ready"].as_bool().filter(|r| *r)
                }
            },
        )
        .await;
        Driver {
            proc,
            url,
            profiles: Vec::new(),
        }
    }

    /// A fresh headless Chromium (own profile) with a window of `width`×`height`.
    pub async fn browser(&mut self, width: u32, height: u32) -> Browser {
        self.open(width, height, None).await
    }

    /// A phone-sized screen (390×844 CSS pixels at 2×, touch), as Chromium's device emulation
    /// draws it: a desktop window cannot be made that narrow.
    pub async fn phone(&mut self) -> Browser {
        let metrics = json!({"deviceMetrics": {"width": 390, "height": 844, "pixelRatio": 2.0, "touch": true, "mobile": true}});
        self.open(390, 844, Some(metrics)).await
    }

    async fn open(&mut self, width: u32, height: u32, mobile: Option<Value>) -> Browser {
        let profile = tempfile::tempdir().expect("profile dir");
        let args = vec![
            "--headless".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--no-first-run".to_owned(),
            "--no-default-browser-check".to_owned(),
            "--hide-scrollbars".to_owned(),
            "--lang=en-GB".to_owned(),
            format!("--window-size={width},{height}"),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        let mut caps = serde_json::Map::new();
        caps.insert("browserName".into(), json!("chrome"));
        let mut options = json!({"binary": CHROMIUM, "args": args});
        if let Some(m) = mobile {
            options["mobileEmulation"] = m;
        }
        caps.insert("goog:chromeOptions".into(), options);
        caps.insert("goog:loggingPrefs".into(), json!({"browser": "ALL"}));
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(caps)
            .connect(&self.url)
            .await
            .expect("a Chromium session starts");
        self.profiles.push(profile);
        Browser { c: client }
    }
}

/// chromedriver's log endpoint: the browser's console and uncaught errors since the last call.
#[derive(Debug)]
struct BrowserLog;

impl WebDriverCompatibleCommand for BrowserLog {
    fn endpoint(
        &self,
        base: &url::Url,
        session: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base.join(&format!("session/{}/se/log", session.unwrap_or_default()))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        (
            http::Method::POST,
            Some(json!({"type": "browser"}).to_string()),
        )
    }
}

/// chromedriver's Chrome DevTools passthrough: one CDP command.
#[derive(Debug)]
struct Cdp(Value);

impl WebDriverCompatibleCommand for Cdp {
    fn endpoint(
        &self,
        base: &url::Url,
        session: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base.join(&format!(
            "session/{}/goog/cdp/execute",
            session.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        (http::Method::POST, Some(self.0.to_string()))
    }
}

/// A page script (for `before_each_page`) that holds every request the page sends for
/// `globalThis.fetchDelayMs` (0 until a test sets it) before sending it.
pub const DELAYABLE_FETCH: &str = "globalThis.fetchDelayMs = 0; \
    const realFetch = globalThis.fetch.bind(globalThis); \
    globalThis.fetch = (...a) => new Promise((r) => setTimeout(r, globalThis.fetchDelayMs)).then(() => realFetch(...a));";

/// What a browser test opens with: a fresh server on SQLite in a folder of its own, a restaurant
/// made from a body, and this test alone among the browser tests while it runs. Fields drop in
/// order: the server stops before its folder goes, and the next test starts after both. Keep
/// the whole `Scene` bound (`let Some(scene) = …`): a pattern that takes some fields and `..`
/// drops the others, folder and turn included, at the end of that statement.
pub struct Scene {
    pub server: Server,
    pub rid: String,
    pub staff: String,
    _dir: tempfile::TempDir,
    _one: tokio::sync::MutexGuard<'static, ()>,
}

/// The [`Scene`] of `test` with the restaurant `body`; `None` when Chromium is missing and the
/// test may skip (it says so).
pub async fn scene(test: &str, body: Value) -> Option<Scene> {
    require(Service::Chromium, test)?;
    let one = exclusive().await;
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("tablecast.db"), 0);
    let (rid, staff) = server.restaurant(body).await;
    Some(Scene {
        server,
        rid,
        staff,
        _dir: dir,
        _one: one,
    })
}

/// The reservations of `rid` on `date`, as the staff list them.
pub async fn reservations_of(server: &Server, rid: &str, staff: &str, date: &str) -> Vec<Value> {
    let (code, day) = server
        .send(
            reqwest::Method::GET,
            &format!("/v1/restaurants/{rid}/reservations?date={date}"),
            Some(staff),
            None,
        )
        .await;
    assert_eq!(code, 200, "{day}");
    day["reservations"].as_array().unwrap().clone()
}

/// One headless Chromium window.
pub struct Browser {
    pub c: Client,
}

impl Browser {
    /// Runs `source` in every page before the page's own scripts (e.g. to skew its clock).
    pub async fn before_each_page(&self, source: &str) {
        self.c
            .issue_cmd(Cdp(json!({"cmd": "Page.addScriptToEvaluateOnNewDocument", "params": {"source": source}})))
            .await
            .expect("script installed");
    }

    pub async fn goto(&self, url: &str) {
        self.c.goto(url).await.expect("page loads");
    }

    /// Opens the staff dashboard of `rid` on `date`, signs in with `token` and waits until it
    /// is live.
    pub async fn sign_in_staff(&self, server: &Server, rid: &str, date: &str, token: &str) {
        self.goto(&server.url(&format!("/staff?restaurant={rid}&date={date}")))
            .await;
        self.type_into("[data-testid=staff-token]", token).await;
        self.click("[data-testid=staff-login]").await;
        self.wait_live().await;
    }

    /// Opens the diner page of `rid` on `date` for two and waits until it is live.
    /// Opens the diner page for a party of 2 and waits until it is live and its times are drawn
    /// from the first snapshot ("live" says the socket is open; the snapshot may come after).
    pub async fn open_diner(&self, server: &Server, rid: &str, date: &str) {
        self.goto(&server.url(&format!("/?restaurant={rid}&date={date}&party=2")))
            .await;
        self.wait_live().await;
        self.wait_attr("#slots", "aria-busy", "false", Duration::from_secs(10))
            .await;
    }

    /// Waits until the page says it is live.
    pub async fn wait_live(&self) {
        self.wait_attr(
            "[data-testid=live-status]",
            "data-state",
            "live",
            Duration::from_secs(10),
        )
        .await;
    }

    /// On the diner page: taps the start `time` and waits for the hold.
    pub async fn take_hold(&self, time: &str) {
        self.click(&format!(r#"[data-testid=slot][data-time="{time}"]"#))
            .await;
        self.wait_visible("[data-testid=hold]", Duration::from_secs(15))
            .await;
    }

    /// Whether the element `css` is disabled.
    pub async fn disabled(&self, css: &str) -> bool {
        self.js(
            "return document.querySelector(arguments[0]).disabled;",
            vec![Value::from(css)],
        )
        .await
        .as_bool()
        .expect("a button")
    }

    pub async fn js(&self, script: &str, args: Vec<Value>) -> Value {
        self.c.execute(script, args).await.expect("script runs")
    }

    /// An attribute of the first element matching `css`, if there is one.
    pub async fn attr(&self, css: &str, name: &str) -> Option<String> {
        self.js(
            "const e = document.querySelector(arguments[0]); return e ? e.getAttribute(arguments[1]) : null;",
            vec![json!(css), json!(name)],
        )
        .await
        .as_str()
        .map(str::to_owned)
    }

    pub async fn text(&self, css: &str) -> Option<String> {
        self.js(
            "const e = document.querySelector(arguments[0]); return e ? e.textContent : null;",
            vec![json!(css)],
        )
        .await
        .as_str()
        .map(str::to_owned)
    }

    /// Whether an element matching `css` is rendered (not hidden).
    pub async fn visible(&self, css: &str) -> bool {
        self.js(
            "const e = document.querySelector(arguments[0]); return !!e && e.getClientRects().length > 0;",
            vec![json!(css)],
        )
        .await
        .as_bool()
        .unwrap_or(false)
    }

    pub async fn wait_visible(&self, css: &str, within: Duration) {
        until(within, &format!("{css} to show"), || async {
            self.visible(css).await.then_some(())
        })
        .await
    }

    pub async fn wait_attr(&self, css: &str, name: &str, value: &str, within: Duration) {
        until(within, &format!("{css} to have {name}={value}"), || async {
            (self.attr(css, name).await.as_deref() == Some(value)).then_some(())
        })
        .await
    }

    /// Clicks the first element matching `css` once it is there and takes the click (an
    /// element the page has drawn but not yet shown or enabled refuses it: tried again until
    /// 10 s have passed).
    pub async fn click(&self, css: &str) {
        use fantoccini::error::ErrorStatus;
        until(
            Duration::from_secs(10),
            &format!("{css} to take a click"),
            || async {
                let e = self.c.find(Locator::Css(css)).await.ok()?;
                match e.click().await {
                    Ok(_) => Some(()),
                    Err(fantoccini::error::CmdError::Standard(w))
                        if matches!(
                            w.error,
                            ErrorStatus::ElementNotInteractable
                                | ErrorStatus::ElementClickIntercepted
                                | ErrorStatus::StaleElementReference
                        ) =>
                    {
                        None
                    }
                    Err(other) => panic!("click {css}: {other}"),
                }
            },
        )
        .await
    }

    /// On the diner page: holds `time`, fills the guest's `name` (and `email`) and confirms;
    /// the confirm's answer is the caller's to wait for.
    pub async fn hold_and_confirm(&self, time: &str, name: &str, email: Option<&str>) {
        self.take_hold(time).await;
        self.type_into("[data-testid=guest-name]", name).await;
        if let Some(email) = email {
            self.type_into("[data-testid=guest-email]", email).await;
        }
        self.click("[data-testid=confirm]").await;
    }

    pub async fn type_into(&self, css: &str, text: &str) {
        let e = self.c.find(Locator::Css(css)).await.expect("input present");
        e.clear().await.expect("clear");
        e.send_keys(text).await.expect("typing");
    }

    /// Saves the viewport once every finite animation (slide-ins, flashes) has finished.
    /// Transitions are not waited for: a hold's progress bar eases to its new width on every
    /// quarter-second tick of the countdown, so one is always running, by design, and a frame
    /// caught mid-way differs from its end by a fraction of a pixel.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        until(Duration::from_secs(15), "animations to settle", || async {
            let settled = self
                .js(
                    "return document.getAnimations().every(a => a instanceof CSSTransition || a.playState !== 'running' || a.effect.getComputedTiming().iterations === Infinity);",
                    vec![],
                )
                .await;
            settled.as_bool().filter(|s| *s).map(|_| ())
        })
        .await;
        let png = self.c.screenshot().await.expect("screenshot");
        let path = screenshot_dir().join(name);
        std::fs::write(&path, png).expect("screenshot saved");
        println!("screenshot: {}", path.display());
        path
    }

    /// The console's errors (level SEVERE) since the last call, except network failures
    /// whose text contains one of `expected` (e.g. a 409 the test provoked).
    pub async fn console_errors(&self, expected: &[&str]) -> Vec<String> {
        let log = self.c.issue_cmd(BrowserLog).await.expect("browser log");
        log.as_array()
            .into_iter()
            .flatten()
            .filter(|e| e["level"] == "SEVERE")
            .map(|e| {
                format!(
                    "[{}] {}",
                    e["source"].as_str().unwrap_or("?"),
                    e["message"].as_str().unwrap_or("")
                )
            })
            .filter(|m| {
                let allowed = m.starts_with("[network]") && expected.iter().any(|x| m.contains(x));
                if allowed {
                    println!("expected console error: {m}");
                }
                !allowed
            })
            .collect()
    }

    /// Fails on any unexpected console error, then closes the browser.
    pub async fn finish(self, expected: &[&str]) {
        let errors = self.console_errors(expected).await;
        assert!(errors.is_empty(), "console errors: {errors:#?}");
        let _ = self.c.close().await;
    }
}
