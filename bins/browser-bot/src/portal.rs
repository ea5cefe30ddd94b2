//! Driving the bank portal's pages in one browser session: sign in (the CSRF token travels in
//! the form as the portal served it), answer the one-time-code step when asked, walk every
//! transactions page, sign out. Each page says what it is in `body[data-page]`; error pages
//! carry `data-status` and `data-error`.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use lanes_browser::Page;
use serde::Deserialize;

use crate::credentials::Credentials;

/// Where the portal is and how patient to be with it.
#[derive(Debug, Clone)]
pub struct Portal {
    base: String,
    timeout: Duration,
}

/// One row of the transactions table.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Row {
    pub id: String,
    pub kind: String,
    pub date: String,
    pub description: String,
    pub amount_cents: i64,
    pub currency: String,
}

/// Everything the portal listed in one visit.
#[derive(Debug, Clone, Default)]
pub struct Statement {
    pub rows: Vec<Row>,
    pub pages: u32,
    /// The portal asked for a one-time code.
    pub otp: bool,
}

/// How a visit failed, by what should happen next.
#[derive(Debug, thiserror::Error)]
pub enum PortalError {
    /// Wrong username or password: retrying would only move the account towards a lock-out.
    #[error("the bank rejected the username or password")]
    BadCredentials,
    /// The bank locked the account.
    #[error("the bank has locked this account after failed sign-ins")]
    Locked,
    /// The portal asked for a one-time code and no OTP seed is configured.
    #[error("the bank asks for a one-time code but no otp_seed is configured for this account")]
    NoOtpSeed,
    /// The code was refused (clock skew at a step boundary): worth one more try.
    #[error("the bank refused the one-time code")]
    OtpRejected,
    /// The portal answered an error page (5xx: try again later).
    #[error("the bank answered HTTP {status} on the {step} page")]
    Unavailable { status: u16, step: &'static str },
    /// A page did not load in time.
    #[error("the {0} page did not load within the page timeout")]
    Timeout(&'static str),
    /// A page that is not what the bot expected at this step.
    #[error("unexpected page at the {step} step: {found}")]
    Unexpected { step: &'static str, found: String },
    /// The browser failed (crashed, killed, or a DevTools command failed).
    #[error(transparent)]
    Browser(#[from] lanes_browser::Error),
}

impl From<serde_json::Error> for PortalError {
    fn from(e: serde_json::Error) -> Self {
        Self::Unexpected {
            step: "reading a page",
            found: format!("a page script answered something else: {e}"),
        }
    }
}

impl From<lanes_browser::CdpError> for PortalError {
    fn from(e: lanes_browser::CdpError) -> Self {
        Self::Browser(e.into())
    }
}

#[derive(Debug, Deserialize)]
struct PageInfo {
    page: Option<String>,
    status: Option<String>,
    error: Option<String>,
}

#[derive(Debug, Deserialize)]
struct TablePage {
    page: u32,
    pages: u32,
    rows: Vec<Row>,
    next: Option<String>,
}

const PAGE_INFO: &str = r#"(() => {
  const b = document.body;
  const e = document.querySelector('[data-error]');
  return { page: b ? (b.dataset.page || null) : null,
           status: b ? (b.dataset.status || null) : null,
           error: e ? e.dataset.error : null };
})()"#;

const READ_TABLE: &str = r#"(() => {
  const text = (tr, sel) => (tr.querySelector(sel) || {textContent: ''}).textContent.trim();
  const rows = Array.from(document.querySelectorAll('table#transactions tbody tr')).map(tr => ({
    id: tr.dataset.txid, kind: tr.dataset.kind, currency: tr.dataset.currency,
    amount_cents: Number(tr.dataset.amountCents),
    date: text(tr, '.date'), description: text(tr, '.description') }));
  const next = document.querySelector('a[rel=next]');
  return { page: Number(document.body.dataset.pageNumber), pages: Number(document.body.dataset.pageCount),
           rows, next: next ? next.href : null };
})()"#;

/// Most pages walked in one visit (a portal that links pages in a loop cannot hold a bot).
const MAX_PAGES: u32 = 500;

impl Portal {
    /// A portal at `base` (e.g. `http://127.0.0.1:8090/bank`).
    pub fn new(base: &str, timeout: Duration) -> Self {
        Self {
            base: base.trim_end_matches('/').to_owned(),
            timeout,
        }
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// Signs in, walks every transactions page, signs out. `on_page(n, of)` is called after each
    /// page is read.
    pub async fn visit(
        &self,
        page: &Page,
        creds: &Credentials,
        mut on_page: impl FnMut(u32, u32),
    ) -> Result<Statement, PortalError> {
        self.goto(page, &format!("{}/login", self.base), "login")
            .await?;
        let info = self.info(page).await?;
        self.expect(&info, "login", "login")?;

        self.fill(page, "input[name=username]", &creds.username)
            .await?;
        self.fill(page, "input[name=password]", creds.password.expose())
            .await?;
        self.submit(page, "#sign-in", "login").await?;
        let mut info = self.info(page).await?;
        let mut otp = false;
        if info.page.as_deref() == Some("otp") {
            otp = true;
            let seed = creds.otp_seed.as_ref().ok_or(PortalError::NoOtpSeed)?;
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            let code =
                totp_lite::totp_custom::<totp_lite::Sha1>(30, 6, seed.expose().as_bytes(), now);
            self.fill(page, "input[name=code]", &code).await?;
            self.submit(page, "#verify", "one-time code").await?;
            info = self.info(page).await?;
            if info.page.as_deref() == Some("otp") {
                return Err(PortalError::OtpRejected);
            }
        }
        match (info.page.as_deref(), info.error.as_deref()) {
            (Some("transactions"), _) => {}
            (Some("login"), Some("invalid_credentials")) => {
                return Err(PortalError::BadCredentials);
            }
            (_, Some("locked")) => return Err(PortalError::Locked),
            _ => self.expect(&info, "transactions", "sign-in")?,
        }

        let mut statement = Statement {
            otp,
            ..Statement::default()
        };
        loop {
            let table: TablePage = page.evaluate(READ_TABLE).await?.into_value()?;
            statement.rows.extend(table.rows);
            statement.pages += 1;
            on_page(table.page, table.pages);
            let Some(next) = table.next else { break };
            if statement.pages >= MAX_PAGES {
                return Err(PortalError::Unexpected {
                    step: "transactions",
                    found: format!("more than {MAX_PAGES} pages"),
                });
            }
            self.goto(page, &next, "transactions").await?;
            let info = self.info(page).await?;
            self.expect(&info, "transactions", "transactions")?;
        }
        // Signing out ends the portal session now rather than at its idle timeout; a failure
        // here loses nothing.
        let _ = self.submit(page, "#sign-out", "sign-out").await;
        Ok(statement)
    }

    async fn goto(&self, page: &Page, url: &str, step: &'static str) -> Result<(), PortalError> {
        match tokio::time::timeout(self.timeout, page.goto(url)).await {
            Ok(r) => {
                r?;
                Ok(())
            }
            Err(_) => Err(PortalError::Timeout(step)),
        }
    }

    async fn info(&self, page: &Page) -> Result<PageInfo, PortalError> {
        Ok(page.evaluate(PAGE_INFO).await?.into_value()?)
    }

    /// Maps an error page or a page other than `want` to its error.
    fn expect(&self, info: &PageInfo, want: &str, step: &'static str) -> Result<(), PortalError> {
        if info.page.as_deref() == Some(want) {
            return Ok(());
        }
        if info.error.as_deref() == Some("locked") {
            return Err(PortalError::Locked);
        }
        if info.page.as_deref() == Some("error") {
            let status = info
                .status
                .as_deref()
                .and_then(|s| s.parse().ok())
                .unwrap_or(500);
            return Err(PortalError::Unavailable { status, step });
        }
        Err(PortalError::Unexpected {
            step,
            found: format!(
                "page {:?} (error {:?})",
                info.page.as_deref().unwrap_or("unknown"),
                info.error.as_deref().unwrap_or("none")
            ),
        })
    }

    async fn fill(&self, page: &Page, selector: &str, text: &str) -> Result<(), PortalError> {
        let input = page.find_element(selector).await?;
        input.click().await?;
        input.type_str(text).await?;
        Ok(())
    }

    /// Clicks a submit button and waits until the next document has loaded.
    async fn submit(
        &self,
        page: &Page,
        button: &str,
        step: &'static str,
    ) -> Result<(), PortalError> {
        page.evaluate("window.__lanesBefore = true").await?;
        page.find_element(button).await?.click().await?;
        let deadline = Instant::now() + self.timeout;
        loop {
            // Fails while the old document unloads; the new one has no marker.
            let done = page
                .evaluate(
                    "window.__lanesBefore === undefined && document.readyState === 'complete'",
                )
                .await
                .ok()
                .and_then(|r| r.into_value::<bool>().ok())
                .unwrap_or(false);
            if done {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(PortalError::Timeout(step));
            }
            tokio::time::sleep(Duration::from_millis(40)).await;
        }
    }
}
