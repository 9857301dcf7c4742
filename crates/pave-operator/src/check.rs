//! `pave-operator check`: what the chart's `helm test` hook runs. It asks a running
//! operator whether it is ready (and if not, prints why, from `/readyz`) and asks the
//! API server whether pave's CRDs are served, with the pod's own token (discovery,
//! which every authenticated user may read).
//!
//! It speaks plain HTTP/1.1 over a TCP stream: the operator serves nothing else, and a
//! client library would double the size of the image for one GET.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long one request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// The operator's HTTP server, e.g. `http://10.96.0.12:8080`.
    #[arg(long)]
    pub url: String,

    /// How long to wait for the operator to become ready, in seconds.
    #[arg(long, default_value_t = 30)]
    pub wait: u64,
}

/// Prints what it found; `true` when the operator is ready and the CRDs are served.
pub async fn run(args: CheckArgs) -> bool {
    let Some(authority) = args.url.strip_prefix("http://") else {
        println!("not ready: --url must start with http://, not {}", args.url);
        return false;
    };
    let authority = authority.trim_end_matches('/');
    let deadline = tokio::time::Instant::now() + Duration::from_secs(args.wait);
    let readiness = loop {
        let answer = get(authority, "/readyz").await;
        if matches!(answer, Ok((200, _))) || tokio::time::Instant::now() >= deadline {
            break answer;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    match readiness {
        Ok((200, _)) => println!("pave-operator at {} is ready", args.url),
        Ok((code, body)) => {
            println!(
                "pave-operator at {} is not ready ({code}):\n{}",
                args.url,
                body.trim_end()
            );
            return false;
        }
        Err(error) => {
            println!("pave-operator at {} does not answer: {error}", args.url);
            return false;
        }
    }
    match crds_served().await {
        Ok(()) => {
            println!("CRDs served: {}", crate::KINDS.join(", "));
            true
        }
        Err(problem) => {
            println!("{problem}");
            false
        }
    }
}

async fn crds_served() -> Result<(), String> {
    let client = kube::Client::try_default()
        .await
        .map_err(|e| format!("cannot reach the API server: {e}"))?;
    crate::check_crds(&client).await
}

/// `GET path` at `authority` (`host:port`): the status code and the body.
async fn get(authority: &str, path: &str) -> Result<(u16, String), String> {
    let exchange = async {
        let mut stream = TcpStream::connect(authority).await?;
        let request =
            format!("GET {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await?;
        Ok::<_, std::io::Error>(response)
    };
    let response = tokio::time::timeout(REQUEST_TIMEOUT, exchange)
        .await
        .map_err(|_| format!("no answer within {}s", REQUEST_TIMEOUT.as_secs()))?
        .map_err(|e| e.to_string())?;
    parse_response(&String::from_utf8_lossy(&response))
}

/// The status code and body of an HTTP/1.1 response without chunked encoding (axum
/// sends a Content-Length for the operator's short bodies).
fn parse_response(response: &str) -> Result<(u16, String), String> {
    let (head, body) = response
        .split_once("\r\n\r\n")
        .ok_or_else(|| "an incomplete HTTP response".to_owned())?;
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| format!("not an HTTP response: {head}"))?;
    Ok((code, body.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_status_and_body() {
        let response = "HTTP/1.1 503 Service Unavailable\r\ncontent-length: 6\r\n\r\nwhy\nx\n";
        assert_eq!(parse_response(response), Ok((503, "why\nx\n".to_owned())));
        assert!(parse_response("garbage").is_err());
    }
}
