//! How mail leaves: SMTP, a sendmail binary, or the log (`stream`).

use std::time::Duration;

use lettre::message::Message;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSendmailTransport, AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use notifications_node::ProcessorError;

use crate::config::{EmailTransport, Newline, SmtpConfig};

pub enum Transport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    Sendmail {
        sendmail: AsyncSendmailTransport<Tokio1Executor>,
        newline: Newline,
    },
    Stream,
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Smtp(_) => "Smtp",
            Self::Sendmail { .. } => "Sendmail",
            Self::Stream => "Stream",
        })
    }
}

impl Transport {
    /// `timeout`: for each SMTP command, connecting included.
    pub fn new(config: &EmailTransport, timeout: Duration) -> Result<Self, String> {
        Ok(match config {
            EmailTransport::Smtp(smtp) => Self::Smtp(smtp_transport(smtp, timeout)?),
            EmailTransport::Sendmail { path, newline } => Self::Sendmail {
                sendmail: AsyncSendmailTransport::new_with_command(path),
                newline: *newline,
            },
            EmailTransport::Stream => Self::Stream,
        })
    }

    /// Sends one message. SMTP replies 5xx are permanent failures; anything else that fails (no
    /// connection, a timeout, a 4xx reply, a failing sendmail) is worth another try.
    pub async fn send(&self, message: &Message) -> Result<(), ProcessorError> {
        match self {
            Self::Smtp(smtp) => smtp.send(message.clone()).await.map(drop).map_err(|e| {
                let reason = format!("SMTP: {e}");
                if e.is_permanent() {
                    ProcessorError::Permanent(reason)
                } else {
                    ProcessorError::Transient(reason)
                }
            }),
            Self::Sendmail { sendmail, newline } => {
                let mut raw = message.formatted();
                if *newline == Newline::Unix {
                    raw = unix_newlines(&raw);
                }
                sendmail
                    .send_raw(message.envelope(), &raw)
                    .await
                    .map_err(|e| ProcessorError::Transient(format!("sendmail: {e}")))
            }
            Self::Stream => {
                tracing::info!(
                    to = ?message.envelope().to(),
                    message = %String::from_utf8_lossy(&message.formatted()),
                    "e-mail (stream transport: not sent)"
                );
                Ok(())
            }
        }
    }
}

fn smtp_transport(
    config: &SmtpConfig,
    timeout: Duration,
) -> Result<AsyncSmtpTransport<Tokio1Executor>, String> {
    let tls_parameters = || {
        TlsParameters::new(config.hostname.clone())
            .map_err(|e| format!("cannot set up TLS for {}: {e}", config.hostname))
    };
    // As nodemailer: `secure` is TLS from the start; otherwise STARTTLS, required with
    // `requireTls` and used when the server offers it without (credentials are refused at start
    // with neither, unless `allowCredentialsWithoutTls`).
    let tls = if config.secure {
        Tls::Wrapper(tls_parameters()?)
    } else if config.require_tls {
        Tls::Required(tls_parameters()?)
    } else {
        Tls::Opportunistic(tls_parameters()?)
    };
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&config.hostname)
        .port(config.port)
        .tls(tls)
        .timeout(Some(timeout));
    if let (Some(username), Some(password)) = (&config.username, &config.password) {
        builder = builder.credentials(Credentials::new(
            username.clone(),
            password.expose().clone(),
        ));
    }
    Ok(builder.build())
}

fn unix_newlines(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    let mut bytes = raw.iter().peekable();
    while let Some(&b) = bytes.next() {
        if b == b'\r' && bytes.peek() == Some(&&b'\n') {
            continue;
        }
        out.push(b);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newlines() {
        assert_eq!(unix_newlines(b"a\r\nb\rc\r\n"), b"a\nb\rc\n");
    }

    #[test]
    fn smtp_tls_modes_and_credentials_build() {
        for (secure, require_tls) in [(false, false), (false, true), (true, false)] {
            let config = SmtpConfig {
                hostname: "mail.example.com".into(),
                port: 587,
                secure,
                require_tls,
                username: Some("u".into()),
                password: Some("p".into()),
            };
            assert!(smtp_transport(&config, Duration::from_secs(1)).is_ok());
        }
    }
}
