//! A fault-injecting HTTP/1.1 reverse proxy in front of moto, for tests of how pave
//! copes with a misbehaving cloud and with its own crashes. The code under test talks
//! to the proxy (`AWS_ENDPOINT_URL` = [`FaultProxy::endpoint`]); the proxy forwards to
//! the real moto server, except where a [`Rule`] says to throttle, fail, drop, slow
//! down, or SIGKILL the caller right after moto has acted. Nothing is mocked: every
//! answer that is not an injected fault is moto's own.
//!
//! AWS query-protocol services (EC2, RDS) send `POST /` with a form body
//! `Action=CreateVpc&…`, and both go to the one moto endpoint; the proxy reads the
//! action from that body (or from `X-Amz-Target` for JSON protocols) and the service
//! from the SigV4 credential scope, so injected errors are shaped the way that
//! service's SDK parses them.
//!
//! Every request is logged ([`FaultProxy::requests`]) with its decoded parameters, so
//! a test can say which resources a call named. And because moto finishes every state
//! change at once, [`FaultProxy::set_slow_states`] makes the proxy report AWS's
//! intermediate states (`creating`, `deleting`, `pending`, `shutting-down`, …) for a
//! while, by rewriting moto's answers; see [`SlowState`].
//!
//! Listings: moto answers DescribeVpcs, DescribeSubnets, DescribeSecurityGroups and
//! DescribeDBSubnetGroups whole, whatever page size was asked for, and its time per
//! call grows with the account, not with the page. [`FaultProxy::set_aws_paging`]
//! makes the proxy page those as AWS does (`MaxResults`/`MaxRecords` honoured, a
//! `NextToken`/`Marker` of its own), and [`Fault::SlowPages`] makes pages larger than
//! a given number of entries slow, so a test can show a client getting a large
//! listing through in small pages without a moto so large that it is slow by itself.
//! The log says how many entries each listing answer held ([`Seen::items`]).
//!
//! ```no_run
//! use std::time::Duration;
//! use pave_testenv::fault_proxy::{Fault, FaultProxy, Rule, SlowState, Transition, When};
//!
//! let env = pave_testenv::TestEnv::shared();
//! let proxy = FaultProxy::start(&env.moto_endpoint()).unwrap();
//! // The first two DescribeVpcs are throttled; the third reaches moto.
//! proxy.set_rules(vec![Rule::new(["DescribeVpcs"], When::First(2), Fault::Throttle)]);
//! // For 5 s after its DeleteDBInstance, pave-abc-db is still described, `deleting`.
//! proxy.set_slow_states(vec![
//!     SlowState::new(Transition::DbDeleting, Duration::from_secs(5)).only("pave-abc-db"),
//! ]);
//! // Pages of more than 50 security groups answer a minute late; pages are cut to
//! // the size asked for, as AWS cuts them.
//! proxy.set_aws_paging(true);
//! proxy.set_rules(vec![Rule::new(
//!     ["DescribeSecurityGroups"],
//!     When::Always,
//!     Fault::SlowPages { items_over: 50, delay: Duration::from_secs(60) },
//! )]);
//! let endpoint = proxy.endpoint(); // for AWS_ENDPOINT_URL
//! ```

use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::sync::oneshot;

use crate::{Error, io_error};

mod form;
mod paging;
mod states;
mod xml;

use states::{Before, Prepared, Slow};
pub use states::{Reported, SlowState, Transition};

/// What to do to a request a rule picked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Answer 400 `Throttling` ("Rate exceeded") without asking moto, in the error
    /// format of the request's service. The SDK retries it as a throttling error.
    Throttle,
    /// Answer 500 `InternalError` without asking moto.
    ServerError,
    /// Close the connection without answering; moto never sees the request.
    Drop,
    /// Forward to moto, then close the connection without passing moto's answer on:
    /// the cloud acted, the caller does not know.
    DropResponse,
    /// Forward to moto and pass its answer on this much later.
    Delay(Duration),
    /// Forward to moto; if the answer (after [`FaultProxy::set_aws_paging`] cut it)
    /// lists more than `items_over` entries ([`Seen::items`]), pass it on `delay`
    /// later, else at once. A page's size, not the call, is what is slow, as when a
    /// service's time grows with what it returns; a client that asks for smaller
    /// pages gets through. A request it did not slow is logged without a fault.
    SlowPages { items_over: usize, delay: Duration },
    /// Forward to moto; once its answer is back, SIGKILL the process `pid` and close
    /// the connection without answering. The process dies knowing nothing of what moto
    /// did: a crash right after the cloud call, before its result could be recorded.
    KillAfter { pid: u32 },
}

/// When a rule applies, counted over the requests that match its actions and reach
/// it (requests an earlier rule already faulted do not count).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum When {
    /// Every matching request.
    Always,
    /// The first `n` matching requests; later ones pass, so a retry gets through.
    First(usize),
    /// Only the `n`-th matching request (1-based).
    Nth(usize),
    /// The `n`-th, `2n`-th, … matching request, at most `times` times in all.
    Every { n: usize, times: usize },
}

impl When {
    /// Whether the `matched`-th matching request is picked, `fired` having been so far.
    fn picks(self, matched: usize, fired: usize) -> bool {
        match self {
            When::Always => true,
            When::First(n) => matched <= n,
            When::Nth(n) => matched == n,
            When::Every { n, times } => n > 0 && matched.is_multiple_of(n) && fired < times,
        }
    }
}

/// Which requests get which fault. Actions are exact API action names
/// (`CreateVpc`), or prefixes ending in `*` (`Describe*`; `*` alone is every action).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    actions: Vec<String>,
    when: When,
    fault: Fault,
}

impl Rule {
    pub fn new<I, S>(actions: I, when: When, fault: Fault) -> Rule
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Rule {
            actions: actions.into_iter().map(Into::into).collect(),
            when,
            fault,
        }
    }

    fn matches(&self, action: &str) -> bool {
        self.actions
            .iter()
            .any(|pattern| match pattern.strip_suffix('*') {
                Some(prefix) => action.starts_with(prefix),
                None => action == pattern,
            })
    }
}

/// One request the proxy handled, in the order they finished.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seen {
    /// The API action (`CreateVpc`), empty if the request named none.
    pub action: String,
    /// The service from the SigV4 credential scope (`ec2`, `rds`), empty if unsigned.
    pub service: String,
    /// The region from the SigV4 credential scope (`us-east-1`), empty if unsigned:
    /// how a test tells the calls about one environment from a sweep of other regions.
    pub region: String,
    /// The status the client was answered; `None` when the connection was closed
    /// instead (a drop, a kill, or the client gave up first).
    pub status: Option<u16>,
    /// Whether moto received the request.
    pub forwarded: bool,
    /// The fault injected, if any.
    pub fault: Option<Fault>,
    /// The request's parameters, decoded (percent-escapes and `+`), in the order sent:
    /// the query string's, then a form body's (the AWS query protocol EC2 and RDS
    /// speak). This is how a test tells *which* resources a call named, e.g. that no
    /// `DeleteVpc` named a VPC of an environment that still exists. Empty for JSON
    /// protocols.
    pub params: Vec<(String, String)>,
    /// How many entries the answer listed, for the listing actions the proxy knows
    /// (DescribeVpcs, DescribeSubnets, DescribeSecurityGroups, DescribeInstances (in
    /// reservations), DescribeDBInstances, DescribeDBSubnetGroups) when moto answered
    /// with a listing; `None` otherwise. With the request's `MaxResults` /
    /// `MaxRecords` ([`Seen::param`]) this shows how a client paged.
    pub items: Option<usize>,
    /// Records this answer showed in a state of the proxy's making
    /// ([`FaultProxy::set_slow_states`]) instead of moto's, or, for a call the proxy
    /// refused as AWS would in such a state, the record and state that refused it.
    pub reported: Vec<Reported>,
    /// How long moto took to answer: from forwarding the request to the last byte of
    /// its answer; for a request the client gave up on first, until it did (moto was
    /// still working: a lower bound). `None` when it was not forwarded. Faults' delays
    /// are not in it, so it says where moto's own time goes (benchmarks report it per
    /// action).
    pub moto_time: Option<Duration>,
}

impl Seen {
    /// The first value of the parameter `name` (`VpcId`, `DBInstanceIdentifier`).
    pub fn param(&self, name: &str) -> Option<&str> {
        form::get(&self.params, name)
    }

    /// The members of the list parameter `prefix`, in index order: `values("InstanceId")`
    /// is `InstanceId.1`, `InstanceId.2`, … Names with more after the index are not
    /// members (`values("Filter.1.Value")` lists a filter's values).
    pub fn values(&self, prefix: &str) -> Vec<&str> {
        form::list(&self.params, prefix)
    }
}

/// A running proxy. Dropping it stops it (open connections are closed).
pub struct FaultProxy {
    addr: SocketAddr,
    state: Arc<State>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<thread::JoinHandle<()>>,
}

impl std::fmt::Debug for FaultProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaultProxy")
            .field("endpoint", &self.endpoint())
            .field("target", &self.state.target)
            .finish_non_exhaustive()
    }
}

struct State {
    /// `http://host:port`, no trailing slash.
    target: String,
    rules: Mutex<Vec<Armed>>,
    slow: Mutex<Slow>,
    aws_paging: AtomicBool,
    seen: Mutex<Vec<Seen>>,
    upstream: Client<HttpConnector, Full<Bytes>>,
}

/// A rule with its counters.
struct Armed {
    rule: Rule,
    matched: usize,
    fired: usize,
}

impl FaultProxy {
    /// Starts a proxy on a free loopback port in front of `target` (`http://host:port`,
    /// e.g. [`crate::TestEnv::moto_endpoint`]), with no rules: everything passes. It
    /// runs on its own thread with its own runtime, so sync and async tests alike can
    /// use it.
    pub fn start(target: &str) -> Result<FaultProxy, Error> {
        Self::start_on("127.0.0.1", target)
    }

    /// [`FaultProxy::start`] on another of this machine's addresses: the test bed's
    /// [`crate::TestEnv::host_ip`], for an operator that runs as a pod on the node.
    pub fn start_on(ip: &str, target: &str) -> Result<FaultProxy, Error> {
        let listener = TcpListener::bind((ip, 0))
            .map_err(io_error(format!("bind the fault proxy to a port on {ip}")))?;
        let addr = listener
            .local_addr()
            .map_err(io_error("read the fault proxy's address"))?;
        listener
            .set_nonblocking(true)
            .map_err(io_error("make the fault proxy's socket non-blocking"))?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(io_error("start the fault proxy's runtime"))?;
        let state = Arc::new(State {
            target: target.trim_end_matches('/').to_owned(),
            rules: Mutex::default(),
            slow: Mutex::default(),
            aws_paging: AtomicBool::new(false),
            seen: Mutex::default(),
            upstream: Client::builder(TokioExecutor::new()).build_http(),
        });
        let (stop, stopped) = oneshot::channel();
        let serving = state.clone();
        let thread = thread::Builder::new()
            .name(format!("fault-proxy-{}", addr.port()))
            .spawn(move || runtime.block_on(serve(listener, serving, stopped)))
            .map_err(io_error("start the fault proxy's thread"))?;
        Ok(FaultProxy {
            addr,
            state,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// `http://IP:PORT`, for `AWS_ENDPOINT_URL`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Replaces the rules (with fresh counters). For each request the first rule that
    /// matches its action and picks it decides the fault.
    pub fn set_rules(&self, rules: Vec<Rule>) {
        *self.state.rules.lock().expect("not poisoned") = rules
            .into_iter()
            .map(|rule| Armed {
                rule,
                matched: 0,
                fired: 0,
            })
            .collect();
    }

    /// Replaces the slow states: from now on, the calls they name make describes
    /// report AWS's intermediate states for a while (see [`Transition`]). Windows
    /// already open close at once and moto's own states show again, so
    /// `set_slow_states(Vec::new())` ends every slow state.
    pub fn set_slow_states(&self, states: Vec<SlowState>) {
        self.state.slow().set(states);
    }

    /// With `true`, DescribeVpcs, DescribeSubnets, DescribeSecurityGroups and
    /// DescribeDBSubnetGroups that ask for a page size (`MaxResults`, `MaxRecords`)
    /// are answered a page of that size at a time, with a `NextToken` / `Marker` of
    /// the proxy's while entries remain, as AWS pages them; moto 5.2.5 answers them
    /// whole. Off by default: answers are moto's own. DescribeInstances and
    /// DescribeDBInstances moto pages itself.
    pub fn set_aws_paging(&self, on: bool) {
        self.state.aws_paging.store(on, Ordering::Relaxed);
    }

    /// Every request handled so far, in the order they finished.
    pub fn requests(&self) -> Vec<Seen> {
        self.state.seen.lock().expect("not poisoned").clone()
    }

    /// Forgets the requests handled so far.
    pub fn clear_requests(&self) {
        self.state.seen.lock().expect("not poisoned").clear();
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn serve(listener: TcpListener, state: Arc<State>, mut stopped: oneshot::Receiver<()>) {
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("fault proxy: cannot listen: {e}");
            return;
        }
    };
    loop {
        let stream = tokio::select! {
            _ = &mut stopped => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                // Out of file descriptors and the like: the client sees a refused
                // connection, which is a fault too; keep serving.
                Err(_) => continue,
            },
        };
        let state = state.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| handle(request, state.clone()));
            // Errors end one client connection: a drop, or the client went away.
            let _ = hyper::server::conn::http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// Returned by the service to make hyper close the connection without an answer.
#[derive(Debug)]
struct Dropped;

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by the fault proxy")
    }
}

impl std::error::Error for Dropped {}

/// Records the request when handling ends, however it ends (a client that gives up
/// cancels the handler).
struct Record<'a> {
    state: &'a State,
    seen: Option<Seen>,
    /// When the request went to moto.
    sent: Option<Instant>,
}

impl Record<'_> {
    fn flush(&mut self) {
        if let Some(mut seen) = self.seen.take() {
            if seen.moto_time.is_none() {
                seen.moto_time = self.sent.map(|sent| sent.elapsed());
            }
            self.state.seen.lock().expect("not poisoned").push(seen);
        }
    }
}

impl Drop for Record<'_> {
    fn drop(&mut self) {
        self.flush();
    }
}

async fn handle(
    request: Request<Incoming>,
    state: Arc<State>,
) -> Result<Response<Full<Bytes>>, Dropped> {
    let (parts, body) = request.into_parts();
    // The client stopped sending mid-body: nothing to forward.
    let body = body.collect().await.map_err(|_| Dropped)?.to_bytes();
    let action = action_of(&parts.headers, parts.uri.query(), &body);
    let (region, service) = scope_of(&parts.headers, &action);
    let params = params_of(&parts.headers, parts.uri.query(), &body);
    let fault = state.decide(&action);
    let mut record = Record {
        state: &state,
        seen: Some(Seen {
            action: action.clone(),
            service: service.clone(),
            region,
            status: None,
            forwarded: false,
            fault: fault.clone(),
            params: params.clone(),
            items: None,
            reported: Vec::new(),
            moto_time: None,
        }),
        sent: None,
    };
    let answer = match fault {
        Some(Fault::Throttle) => Ok(aws_error(
            StatusCode::BAD_REQUEST,
            &service,
            "Throttling",
            "Rate exceeded",
        )),
        Some(Fault::ServerError) => Ok(aws_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            &service,
            "InternalError",
            "An internal error has occurred (injected by the fault proxy)",
        )),
        Some(Fault::Drop) => Err(Dropped),
        fault => {
            // Decided (and the lock released) before anything is awaited.
            let before = state.slow().before(Instant::now(), &action, &params);
            let response = match before {
                Before::Refuse {
                    code,
                    message,
                    reported,
                } => {
                    if let Some(seen) = &mut record.seen {
                        seen.reported = reported;
                    }
                    aws_error(StatusCode::BAD_REQUEST, &service, code, &message)
                }
                Before::Forward(prepared) => {
                    let cut = if state.aws_paging.load(Ordering::Relaxed) {
                        paging::plan(&action, &params)
                    } else {
                        None
                    };
                    forward(
                        &state,
                        &parts,
                        body,
                        &action,
                        &params,
                        &prepared,
                        cut.as_ref(),
                        &mut record,
                    )
                    .await?
                }
            };
            match fault {
                Some(Fault::DropResponse) => Err(Dropped),
                Some(Fault::KillAfter { pid }) => {
                    // Recorded first, so whoever sees the process die sees this too.
                    record.flush();
                    // SAFETY: kill(2) has no memory-safety preconditions.
                    unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
                    Err(Dropped)
                }
                Some(Fault::Delay(delay)) => {
                    tokio::time::sleep(delay).await;
                    Ok(response)
                }
                Some(Fault::SlowPages { items_over, delay }) => {
                    let items = record.seen.as_ref().and_then(|s| s.items);
                    if items.is_some_and(|n| n > items_over) {
                        tokio::time::sleep(delay).await;
                    } else if let Some(seen) = &mut record.seen {
                        seen.fault = None;
                    }
                    Ok(response)
                }
                _ => Ok(response),
            }
        }
    };
    if let (Ok(response), Some(seen)) = (&answer, &mut record.seen) {
        seen.status = Some(response.status().as_u16());
    }
    answer
}

/// Passes the request to moto (with the parameters slow states add, without the
/// proxy's own page token) and moto's answer back (as slow states rewrite it, cut to
/// the page when the proxy pages it); a 502 if moto did not answer.
#[allow(clippy::too_many_arguments)]
async fn forward(
    state: &State,
    parts: &hyper::http::request::Parts,
    body: Bytes,
    action: &str,
    params: &[(String, String)],
    prepared: &Prepared,
    cut: Option<&paging::Cut>,
    record: &mut Record<'_>,
) -> Result<Response<Full<Bytes>>, Dropped> {
    let mut headers = end_to_end(&parts.headers);
    let mut path = parts
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    let mut body = body;
    if let Some(token) = cut.and_then(|c| c.strip) {
        body = Bytes::from(form::without(&body, token));
        headers.remove(header::CONTENT_LENGTH);
    }
    if !prepared.extra_params.is_empty() {
        let extra = prepared.extra_params.join("&");
        if body.is_empty() {
            let separator = if path.contains('?') { '&' } else { '?' };
            path = format!("{path}{separator}{extra}");
        } else {
            body = Bytes::from([&body[..], b"&", extra.as_bytes()].concat());
            // hyper frames the new body itself.
            headers.remove(header::CONTENT_LENGTH);
        }
    }
    let mut upstream = Request::new(Full::new(body));
    *upstream.method_mut() = parts.method.clone();
    *upstream.uri_mut() = format!("{}{path}", state.target)
        .parse()
        .map_err(|_| Dropped)?;
    *upstream.headers_mut() = headers;
    let sent = Instant::now();
    record.sent = Some(sent);
    let response = match state.upstream.request(upstream).await {
        Ok(response) => response,
        Err(e) => return Ok(bad_gateway(&state.target, &e)),
    };
    let answered = Instant::now();
    if let Some(seen) = &mut record.seen {
        seen.forwarded = true;
    }
    let (head, body) = response.into_parts();
    let body = match body.collect().await {
        Ok(body) => body.to_bytes(),
        Err(e) => return Ok(bad_gateway(&state.target, &e)),
    };
    if let Some(seen) = &mut record.seen {
        seen.moto_time = Some(sent.elapsed());
    }
    let mut headers = end_to_end(&head.headers);
    let mut status = head.status;
    let (rewritten, reported) =
        state
            .slow()
            .after(answered, action, params, prepared, status.as_u16(), &body);
    if let Some(seen) = &mut record.seen {
        seen.reported = reported;
    }
    let mut body = match rewritten {
        Some(rewritten) => {
            status = StatusCode::from_u16(rewritten.status).unwrap_or(status);
            headers.remove(header::CONTENT_LENGTH);
            Bytes::from(rewritten.body)
        }
        None => body,
    };
    let ok = status.is_success();
    if let Some(page) = cut.filter(|_| ok).and_then(|c| paging::cut(c, &body)) {
        headers.remove(header::CONTENT_LENGTH);
        body = Bytes::from(page);
    }
    if let Some(seen) = &mut record.seen {
        seen.items = if ok {
            paging::items(action, &body)
        } else {
            None
        };
    }
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    Ok(response)
}

impl State {
    fn slow(&self) -> std::sync::MutexGuard<'_, Slow> {
        self.slow.lock().expect("not poisoned")
    }

    /// The fault for a request with this action, counting it in every rule it reaches.
    fn decide(&self, action: &str) -> Option<Fault> {
        let mut rules = self.rules.lock().expect("not poisoned");
        for armed in rules.iter_mut().filter(|a| a.rule.matches(action)) {
            armed.matched += 1;
            if armed.rule.when.picks(armed.matched, armed.fired) {
                armed.fired += 1;
                return Some(armed.rule.fault.clone());
            }
        }
        None
    }
}

/// The API action: `Action=` in a query-protocol form body or query string, else the
/// part of `X-Amz-Target` after the dot (JSON protocols).
fn action_of(headers: &HeaderMap, query: Option<&str>, body: &[u8]) -> String {
    let form_action = |form: &[u8]| {
        form.split(|b| *b == b'&')
            .find_map(|pair| pair.strip_prefix(b"Action="))
            .map(|a| String::from_utf8_lossy(a).into_owned())
    };
    form_action(body)
        .or_else(|| query.and_then(|q| form_action(q.as_bytes())))
        .or_else(|| {
            let target = headers.get("x-amz-target")?.to_str().ok()?;
            Some(target.rsplit('.').next().unwrap_or(target).to_owned())
        })
        .unwrap_or_default()
}

/// The query string's parameters, then the body's if it is a form
/// (`application/x-www-form-urlencoded`, as the query-protocol SDKs send it).
fn params_of(headers: &HeaderMap, query: Option<&str>, body: &[u8]) -> Vec<(String, String)> {
    let mut params = query
        .map(|q| form::decode(q.as_bytes()))
        .unwrap_or_default();
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim_start()
                .to_ascii_lowercase()
                .starts_with("application/x-www-form-urlencoded")
        });
    if is_form {
        params.extend(form::decode(body));
    }
    params
}

/// The region and service in the SigV4 credential scope
/// (`Credential=AKID/20250101/us-east-1/rds/aws4_request`); for an unsigned request, no
/// region, and `rds` when the action names a DB resource, else `ec2`.
fn scope_of(headers: &HeaderMap, action: &str) -> (String, String) {
    let scope = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|auth| {
            let scope = &auth[auth.find("Credential=")? + "Credential=".len()..];
            let mut parts = scope.split([',', ' ']).next()?.split('/').skip(2);
            Some((parts.next()?.to_owned(), parts.next()?.to_owned()))
        });
    scope.unwrap_or_else(|| {
        let service = if action.contains("DB") { "rds" } else { "ec2" };
        (String::new(), service.to_owned())
    })
}

/// An AWS error answer as the service's SDK parses it: RDS (and the other
/// `ErrorResponse` query services) or EC2's own `Response/Errors` shape.
fn aws_error(
    status: StatusCode,
    service: &str,
    code: &str,
    message: &str,
) -> Response<Full<Bytes>> {
    let request_id = "00000000-0000-0000-0000-fa017fa017fa";
    let body = if service == "ec2" {
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>{code}</Code>\
             <Message>{message}</Message></Error></Errors><RequestID>{request_id}</RequestID></Response>"
        )
    } else {
        let kind = if status.is_server_error() {
            "Receiver"
        } else {
            "Sender"
        };
        format!(
            "<ErrorResponse><Error><Type>{kind}</Type><Code>{code}</Code><Message>{message}</Message>\
             </Error><RequestId>{request_id}</RequestId></ErrorResponse>"
        )
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/xml"));
    response
}

fn bad_gateway(target: &str, error: &dyn std::fmt::Display) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(format!(
        "fault proxy: {target} did not answer: {error}"
    ))));
    *response.status_mut() = StatusCode::BAD_GATEWAY;
    response
}

/// The headers without the hop-by-hop ones (RFC 9110 §7.6.1), which describe one
/// connection, not the message. Bodies are forwarded whole, so framing headers are
/// recomputed; `Expect` is answered by the proxy itself.
fn end_to_end(headers: &HeaderMap) -> HeaderMap {
    const HOP_BY_HOP: [HeaderName; 6] = [
        header::CONNECTION,
        header::TE,
        header::TRAILER,
        header::TRANSFER_ENCODING,
        header::UPGRADE,
        header::EXPECT,
    ];
    let mut out = headers.clone();
    for name in HOP_BY_HOP {
        out.remove(name);
    }
    for name in ["keep-alive", "proxy-connection"] {
        out.remove(name);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::TcpStream;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Instant;

    /// A tiny stand-in for moto: answers every request `200 moto says <action>` and
    /// counts them. Its thread lives as long as the test process.
    struct Upstream {
        endpoint: String,
        hits: Arc<AtomicUsize>,
    }

    fn upstream() -> Upstream {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        listener.set_nonblocking(true).unwrap();
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = hits.clone();
        thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                loop {
                    let (stream, _) = listener.accept().await.unwrap();
                    let counter = counter.clone();
                    tokio::spawn(async move {
                        let service = service_fn(move |request: Request<Incoming>| {
                            let counter = counter.clone();
                            async move {
                                counter.fetch_add(1, Ordering::SeqCst);
                                let body = request.into_body().collect().await?.to_bytes();
                                let action = action_of(&HeaderMap::new(), None, &body);
                                Ok::<_, hyper::Error>(Response::new(Full::new(Bytes::from(
                                    format!("moto says {action}"),
                                ))))
                            }
                        });
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    });
                }
            });
        });
        Upstream {
            endpoint: format!("http://{addr}"),
            hits,
        }
    }

    /// A keep-alive client connection speaking HTTP/1.1 by hand, as the SDK does:
    /// `POST /` with a Content-Length form body and a SigV4 Authorization header.
    struct Connection {
        reader: BufReader<TcpStream>,
    }

    impl Connection {
        fn open(endpoint: &str) -> Connection {
            let stream = TcpStream::connect(endpoint.trim_start_matches("http://")).unwrap();
            stream
                .set_read_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            Connection {
                reader: BufReader::new(stream),
            }
        }

        /// `Some((status, body))`, or `None` if the proxy closed the connection.
        fn call(&mut self, service: &str, action: &str) -> Option<(u16, String)> {
            self.send(service, &format!("Action={action}&Version=2016-11-15"))
        }

        /// As [`Connection::call`], with the whole form body given.
        fn send(&mut self, service: &str, body: &str) -> Option<(u16, String)> {
            let request = format!(
                "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\n\
                 Content-Type: application/x-www-form-urlencoded\r\n\
                 Authorization: AWS4-HMAC-SHA256 Credential=testing/20250101/us-east-1/{service}/aws4_request, SignedHeaders=host, Signature=0\r\n\
                 Content-Length: {}\r\n\r\n{body}",
                body.len()
            );
            self.reader.get_mut().write_all(request.as_bytes()).ok()?;
            let mut status_line = String::new();
            if self.reader.read_line(&mut status_line).ok()? == 0 {
                return None;
            }
            let status = status_line.split(' ').nth(1)?.parse().ok()?;
            let mut length = 0;
            loop {
                let mut line = String::new();
                self.reader.read_line(&mut line).ok()?;
                let line = line.trim_end();
                if line.is_empty() {
                    break;
                }
                if let Some((name, value)) = line.split_once(':')
                    && name.eq_ignore_ascii_case("content-length")
                {
                    length = value.trim().parse().ok()?;
                }
            }
            let mut body = vec![0; length];
            self.reader.read_exact(&mut body).ok()?;
            Some((status, String::from_utf8_lossy(&body).into_owned()))
        }
    }

    #[test]
    fn throttles_the_first_two_then_forwards_on_the_same_connection() {
        let upstream = upstream();
        let proxy = FaultProxy::start(&upstream.endpoint).unwrap();
        proxy.set_rules(vec![Rule::new(
            ["DescribeVpcs"],
            When::First(2),
            Fault::Throttle,
        )]);
        let mut connection = Connection::open(&proxy.endpoint());
        for _ in 0..2 {
            let (status, body) = connection.call("ec2", "DescribeVpcs").unwrap();
            assert_eq!(status, 400);
            assert!(
                body.contains("<Response><Errors><Error><Code>Throttling</Code>"),
                "{body}"
            );
        }
        assert_eq!(
            connection.call("ec2", "DescribeVpcs"),
            Some((200, "moto says DescribeVpcs".into()))
        );
        // Other actions were never affected.
        assert_eq!(
            connection.call("ec2", "DescribeSubnets"),
            Some((200, "moto says DescribeSubnets".into()))
        );
        assert_eq!(upstream.hits.load(Ordering::SeqCst), 2);
        let seen: Vec<(String, Option<u16>, bool)> = proxy
            .requests()
            .into_iter()
            .map(|s| (s.action, s.status, s.forwarded))
            .collect();
        assert_eq!(
            seen,
            [
                ("DescribeVpcs".into(), Some(400), false),
                ("DescribeVpcs".into(), Some(400), false),
                ("DescribeVpcs".into(), Some(200), true),
                ("DescribeSubnets".into(), Some(200), true),
            ]
        );
    }

    #[test]
    fn errors_take_the_shape_of_the_requests_service() {
        let upstream = upstream();
        let proxy = FaultProxy::start(&upstream.endpoint).unwrap();
        proxy.set_rules(vec![
            Rule::new(["CreateDBInstance"], When::First(1), Fault::Throttle),
            Rule::new(["*"], When::First(2), Fault::ServerError),
        ]);
        let mut connection = Connection::open(&proxy.endpoint());
        let (status, body) = connection.call("rds", "CreateDBInstance").unwrap();
        assert_eq!(status, 400);
        assert!(
            body.contains("<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code>"),
            "{body}"
        );
        // The throttled request did not reach the second rule: it still has two to give.
        let (status, body) = connection.call("rds", "CreateDBInstance").unwrap();
        assert_eq!(status, 500);
        assert!(
            body.contains("<Type>Receiver</Type><Code>InternalError</Code>"),
            "{body}"
        );
        let (status, body) = connection.call("ec2", "RunInstances").unwrap();
        assert_eq!(status, 500);
        assert!(
            body.contains("<Errors><Error><Code>InternalError</Code>"),
            "{body}"
        );
        assert_eq!(connection.call("ec2", "RunInstances").unwrap().0, 200);
        assert_eq!(upstream.hits.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn every_nth_is_picked_a_bounded_number_of_times() {
        let rule = When::Every { n: 3, times: 2 };
        let mut fired = 0;
        let picked: Vec<usize> = (1..=12)
            .filter(|matched| {
                let picks = rule.picks(*matched, fired);
                fired += usize::from(picks);
                picks
            })
            .collect();
        assert_eq!(picked, [3, 6]);
        assert!(When::Nth(4).picks(4, 0) && !When::Nth(4).picks(5, 0));
    }

    #[test]
    fn drops_close_the_connection_with_or_without_moto_acting() {
        let upstream = upstream();
        let proxy = FaultProxy::start(&upstream.endpoint).unwrap();
        proxy.set_rules(vec![
            Rule::new(["CreateVpc"], When::Nth(1), Fault::Drop),
            Rule::new(["CreateVpc"], When::Nth(1), Fault::DropResponse),
        ]);
        assert_eq!(
            Connection::open(&proxy.endpoint()).call("ec2", "CreateVpc"),
            None
        );
        assert_eq!(upstream.hits.load(Ordering::SeqCst), 0, "dropped unseen");
        assert_eq!(
            Connection::open(&proxy.endpoint()).call("ec2", "CreateVpc"),
            None
        );
        assert_eq!(upstream.hits.load(Ordering::SeqCst), 1, "moto acted");
        assert_eq!(
            Connection::open(&proxy.endpoint()).call("ec2", "CreateVpc"),
            Some((200, "moto says CreateVpc".into()))
        );
        let seen = proxy.requests();
        assert_eq!(
            seen.iter()
                .map(|s| (s.status, s.forwarded))
                .collect::<Vec<_>>(),
            [(None, false), (None, true), (Some(200), true)]
        );
    }

    #[test]
    fn delays_answer_late() {
        let upstream = upstream();
        let proxy = FaultProxy::start(&upstream.endpoint).unwrap();
        proxy.set_rules(vec![Rule::new(
            ["Describe*"],
            When::Always,
            Fault::Delay(Duration::from_millis(600)),
        )]);
        let mut connection = Connection::open(&proxy.endpoint());
        let started = Instant::now();
        assert_eq!(connection.call("ec2", "DescribeInstances").unwrap().0, 200);
        assert!(started.elapsed() >= Duration::from_millis(600));
        let started = Instant::now();
        assert_eq!(connection.call("ec2", "CreateTags").unwrap().0, 200);
        assert!(started.elapsed() < Duration::from_millis(600));
    }

    #[test]
    fn kill_after_lets_moto_act_then_kills_the_caller_unanswered() {
        let upstream = upstream();
        let proxy = FaultProxy::start(&upstream.endpoint).unwrap();
        let mut victim = std::process::Command::new("sleep")
            .arg("60")
            .spawn()
            .unwrap();
        proxy.set_rules(vec![Rule::new(
            ["CreateVpc", "CreateSubnet"],
            When::Nth(2),
            Fault::KillAfter { pid: victim.id() },
        )]);
        let mut connection = Connection::open(&proxy.endpoint());
        assert_eq!(connection.call("ec2", "CreateVpc").unwrap().0, 200);
        assert_eq!(connection.call("ec2", "CreateSubnet"), None);
        let status = victim.wait().unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(libc::SIGKILL));
        assert_eq!(upstream.hits.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn the_log_holds_each_requests_decoded_parameters() {
        let upstream = upstream();
        let proxy = FaultProxy::start(&upstream.endpoint).unwrap();
        proxy.set_rules(vec![Rule::new(["DeleteVpc"], When::Always, Fault::Drop)]);
        let mut connection = Connection::open(&proxy.endpoint());
        let (status, _) = connection
            .send(
                "ec2",
                "Action=TerminateInstances&Version=2016-11-15&InstanceId.2=i-b&InstanceId.1=i-a\
                 &Filter.1.Name=tag%3Apave.dev%2Fname&Filter.1.Value.1=pave-x+vm",
            )
            .unwrap();
        assert_eq!(status, 200);
        assert_eq!(
            Connection::open(&proxy.endpoint()).send("ec2", "Action=DeleteVpc&VpcId=vpc-1"),
            None
        );
        let seen = proxy.requests();
        assert_eq!(seen[0].values("InstanceId"), ["i-a", "i-b"]);
        assert_eq!(seen[0].param("Filter.1.Name"), Some("tag:pave.dev/name"));
        assert_eq!(seen[0].values("Filter.1.Value"), ["pave-x vm"]);
        assert_eq!(seen[0].param("Version"), Some("2016-11-15"));
        assert_eq!(seen[0].params.len(), 6);
        // A faulted request is logged with its parameters too: what pave asked for,
        // whether or not it got there.
        assert_eq!(seen[1].param("VpcId"), Some("vpc-1"));
        assert!(!seen[1].forwarded);
    }

    #[test]
    fn params_come_from_the_query_string_and_a_form_body_only() {
        let mut form = HeaderMap::new();
        form.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded; charset=utf-8"),
        );
        assert_eq!(
            params_of(&form, Some("Action=DescribeVpcs"), b"VpcId.1=vpc-1"),
            [
                ("Action".to_owned(), "DescribeVpcs".to_owned()),
                ("VpcId.1".to_owned(), "vpc-1".to_owned())
            ]
        );
        let mut json = HeaderMap::new();
        json.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-amz-json-1.0"),
        );
        assert_eq!(params_of(&json, None, b"{\"a=b\": 1}"), []);
    }

    #[test]
    fn actions_and_services_are_read_from_the_request() {
        let mut headers = HeaderMap::new();
        assert_eq!(
            action_of(&headers, None, b"Action=CreateVpc&Version=2016-11-15"),
            "CreateVpc"
        );
        assert_eq!(
            action_of(&headers, Some("Version=1&Action=DescribeVpcs"), b""),
            "DescribeVpcs"
        );
        headers.insert(
            "x-amz-target",
            HeaderValue::from_static("DynamoDB_20120810.PutItem"),
        );
        assert_eq!(action_of(&headers, None, b"{}"), "PutItem");
        let unsigned = |action| scope_of(&HeaderMap::new(), action);
        assert_eq!(
            unsigned("CreateDBSubnetGroup"),
            (String::new(), "rds".into())
        );
        assert_eq!(unsigned("CreateVpc"), (String::new(), "ec2".into()));
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static(
                "AWS4-HMAC-SHA256 Credential=AKID/20250101/eu-west-1/rds/aws4_request, SignedHeaders=host, Signature=abc",
            ),
        );
        assert_eq!(
            scope_of(&headers, "DescribeVpcs"),
            ("eu-west-1".into(), "rds".into())
        );
    }
}
