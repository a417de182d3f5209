//! The console page (being written by the console-ui helper; this placeholder only fixes the signature).

/// How the console page signs the instructor in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PageAuth {
    /// Against the deployment's Cognito user pool, from the browser.
    Cognito { region: String, client_id: String },
    /// The local runner: loopback only, no sign-in.
    Local,
}

/// The console page in `lang`.
pub fn console_page(_lang: &str, _auth: &PageAuth) -> String {
    String::new()
}
