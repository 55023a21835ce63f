//! Email channels: a plain-text and HTML message through the operator's SMTP server
//! (`--smtp-url smtp://host:port`, `smtps://…` for TLS, `?tls=required` for STARTTLS;
//! `--smtp-from`), with the agent's text and a link to the session.
//!
//! Agent text is untrusted: the HTML part escapes it and keeps its line breaks; nothing the
//! agent wrote becomes markup or a header (the subject is cut to one line).

use std::time::Duration;

use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

/// The operator's SMTP server and sender.
#[derive(Clone)]
pub struct Smtp {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    /// The URL without credentials, for logs and `Debug`.
    shown: String,
}

impl std::fmt::Debug for Smtp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Smtp({} as {})", self.shown, self.from)
    }
}

/// What an SMTP exchange ended with.
#[derive(Debug)]
pub struct SmtpError {
    pub code: Option<u16>,
    /// A 5xx answer: the same message will not be accepted later.
    pub permanent: bool,
    pub message: String,
}

impl Smtp {
    /// `url` as lettre reads it, sending as `from`, greeting as `hello` (the public host).
    pub fn new(url: &str, from: &str, hello: &str, timeout: Duration) -> Result<Smtp, String> {
        let from: Mailbox = from
            .parse()
            .map_err(|e| format!("--smtp-from {from:?} is not an email address: {e}"))?;
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|e| format!("--smtp-url is not an SMTP URL: {e}"))?
            .hello_name(ClientId::Domain(hello.to_owned()))
            .timeout(Some(timeout))
            .build();
        let mut shown = url::Url::parse(url).map_err(|e| format!("--smtp-url: {e}"))?;
        let _ = shown.set_password(None);
        let _ = shown.set_username("");
        Ok(Smtp {
            transport,
            from,
            shown: shown.to_string(),
        })
    }

    /// Send one message; the server's reply code on success.
    pub async fn send(
        &self,
        to: &str,
        subject: &str,
        text: &str,
        html: &str,
    ) -> Result<u16, SmtpError> {
        let local = |message: String| SmtpError {
            code: None,
            permanent: true,
            message,
        };
        let to: Mailbox = to
            .parse()
            .map_err(|e| local(format!("{to:?} is not an email address: {e}")))?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(subject)
            .multipart(MultiPart::alternative_plain_html(
                text.to_owned(),
                html.to_owned(),
            ))
            .map_err(|e| local(format!("cannot build the message: {e}")))?;
        match self.transport.send(message).await {
            Ok(response) => Ok(response.code().into()),
            Err(e) => Err(SmtpError {
                code: e.status().map(u16::from),
                permanent: e.is_permanent(),
                message: format!("SMTP {}: {e}", self.shown),
            }),
        }
    }
}

/// An email address people give for a channel: parsed, one mailbox, no display name tricks.
pub fn parse_address(text: &str) -> Result<String, String> {
    let text = text.trim();
    if text.chars().any(char::is_control) || text.len() > 254 {
        return Err("must be one email address".into());
    }
    let address: lettre::Address = text
        .parse()
        .map_err(|_| "must be an email address such as ada@example.com".to_owned())?;
    Ok(address.to_string())
}

/// `text` with `&`, `<`, `>`, `"` and `'` escaped for HTML.
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_single_mailboxes() {
        assert_eq!(
            parse_address(" ada@example.com ").unwrap(),
            "ada@example.com"
        );
        for bad in [
            "",
            "ada",
            "a@b@c",
            "ada@example.com\r\nBcc: x@y.z",
            "Ada <ada@example.com>",
        ] {
            assert!(parse_address(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn html_is_escaped() {
        assert_eq!(
            escape_html("<script>alert('x') & \"y\"</script>"),
            "&lt;script&gt;alert(&#39;x&#39;) &amp; &quot;y&quot;&lt;/script&gt;"
        );
    }
}
