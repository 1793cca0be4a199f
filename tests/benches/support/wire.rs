//! The statements a piece of code sends, taken off the wire, so a bench can time the same SQL
//! prepared once: a proxy in front of the database records each statement the client prepares
//! (Parse: name and text) and runs (Bind: the statement and its parameters, as the bytes sent),
//! and simple queries (BEGIN, COMMIT), in order, while recording is on. What the product's code
//! sends is what is replayed: no copy of its SQL to drift from it. A statement sent unnamed (a
//! search, planned for its values at every run) is replayed unnamed too.

use std::{
    collections::HashMap,
    error::Error,
    sync::{Arc, Mutex},
};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};
use tokio_postgres::{
    types::{private::BytesMut, to_sql_checked, IsNull, ToSql, Type},
    Client, Statement,
};

use futures::TryStreamExt;

use crate::support::BoxError;

/// One statement as the client ran it.
#[derive(Debug, Clone)]
pub enum Sent {
    /// Bound parameters (binary, as tokio-postgres sends them; None for NULL).
    Bound {
        text: String,
        params: Vec<Option<Vec<u8>>>,
        /// Sent as the unnamed statement, planned for these parameters.
        unnamed: bool,
    },
    Simple(String),
}

#[derive(Default)]
struct Log {
    recording: bool,
    /// Prepared statement names to their text, per proxied connection.
    names: HashMap<(usize, String), String>,
    sent: Vec<Sent>,
}

/// A recording proxy to `upstream` (host:port) on a free local port.
pub struct Recorder {
    pub port: u16,
    log: Arc<Mutex<Log>>,
}

impl Recorder {
    pub async fn start(upstream: String) -> Result<Self, BoxError> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let log = Arc::new(Mutex::new(Log::default()));
        let shared = log.clone();
        tokio::spawn(async move {
            let mut connection = 0;
            while let Ok((client, _)) = listener.accept().await {
                connection += 1;
                let (log, upstream) = (shared.clone(), upstream.clone());
                tokio::spawn(async move {
                    if let Ok(server) = TcpStream::connect(&upstream).await {
                        let _ = proxy(client, server, log, connection).await;
                    }
                });
            }
        });
        Ok(Self { port, log })
    }

    /// `url` (a postgres:// URL) through the proxy.
    pub fn url(&self, url: &str) -> Result<String, BoxError> {
        let (scheme, rest) = url.split_once("://").ok_or("not a URL")?;
        let (auth, rest) = rest.split_once('@').ok_or("no user in the URL")?;
        let path = rest.split_once('/').map(|(_, path)| path).unwrap_or("");
        Ok(format!("{scheme}://{auth}@127.0.0.1:{}/{path}", self.port))
    }

    /// Records what runs from now until [`Recorder::take`].
    pub fn record(&self) {
        let mut log = self.log.lock().expect("log");
        log.sent.clear();
        log.recording = true;
    }

    pub fn take(&self) -> Vec<Sent> {
        let mut log = self.log.lock().expect("log");
        log.recording = false;
        std::mem::take(&mut log.sent)
    }
}

async fn proxy(
    mut client: TcpStream,
    server: TcpStream,
    log: Arc<Mutex<Log>>,
    connection: usize,
) -> Result<(), BoxError> {
    let (mut from_server, mut to_server) = server.into_split();
    let (mut from_client, mut to_client) = client.split();
    let downstream = async {
        tokio::io::copy(&mut from_server, &mut to_client).await?;
        Ok::<(), BoxError>(())
    };
    tokio::select! {
        result = forward(&mut from_client, &mut to_server, &log, connection) => result,
        result = downstream => result,
    }
}

/// Copies the client's messages to the server, noting each.
async fn forward(
    from_client: &mut (impl AsyncReadExt + Unpin),
    to_server: &mut (impl AsyncWriteExt + Unpin),
    log: &Mutex<Log>,
    connection: usize,
) -> Result<(), BoxError> {
    // The startup message has no type byte, nor has an SSL or GSS encryption request before it
    // (the server answers those with one byte: 'N', no encryption, here).
    let mut untyped = true;
    loop {
        let kind = if untyped {
            None
        } else {
            let kind = from_client.read_u8().await?;
            to_server.write_u8(kind).await?;
            Some(kind)
        };
        let len = from_client.read_u32().await?;
        let mut body = vec![0; len as usize - 4];
        from_client.read_exact(&mut body).await?;
        to_server.write_u32(len).await?;
        to_server.write_all(&body).await?;
        match kind {
            Some(kind) => note(log, connection, kind, &body),
            None => untyped = ENCRYPTION_REQUESTS.iter().any(|code| body[..] == code[..]),
        }
    }
}

/// The codes of SSLRequest and GSSENCRequest.
const ENCRYPTION_REQUESTS: [[u8; 4]; 2] = [80877103_u32.to_be_bytes(), 80877104_u32.to_be_bytes()];

fn note(log: &Mutex<Log>, connection: usize, kind: u8, body: &[u8]) {
    let mut log = log.lock().expect("log");
    let mut at = Cursor { body, at: 0 };
    match kind {
        b'P' => {
            let name = at.text();
            let text = at.text();
            log.names.insert((connection, name), text);
        }
        b'B' if log.recording => {
            let _portal = at.text();
            let name = at.text();
            let formats = at.u16();
            at.skip(2 * formats);
            let params = (0..at.u16())
                .map(|_| {
                    let len = at.i32();
                    (len >= 0).then(|| at.bytes(len as usize).to_vec())
                })
                .collect();
            let unnamed = name.is_empty();
            let text = log
                .names
                .get(&(connection, name))
                .cloned()
                .unwrap_or_default();
            log.sent.push(Sent::Bound {
                text,
                params,
                unnamed,
            });
        }
        b'Q' if log.recording => {
            let text = at.text();
            log.sent.push(Sent::Simple(text));
        }
        _ => {}
    }
}

struct Cursor<'a> {
    body: &'a [u8],
    at: usize,
}

impl Cursor<'_> {
    fn text(&mut self) -> String {
        let end = self.body[self.at..]
            .iter()
            .position(|b| *b == 0)
            .map_or(self.body.len(), |i| self.at + i);
        let text = String::from_utf8_lossy(&self.body[self.at..end]).into_owned();
        self.at = end + 1;
        text
    }

    fn u16(&mut self) -> usize {
        let value = u16::from_be_bytes([self.body[self.at], self.body[self.at + 1]]);
        self.at += 2;
        value as usize
    }

    fn i32(&mut self) -> i32 {
        i32::from_be_bytes(self.bytes(4).try_into().expect("4 bytes"))
    }

    fn bytes(&mut self, n: usize) -> &[u8] {
        let bytes = &self.body[self.at..self.at + n];
        self.at += n;
        bytes
    }

    fn skip(&mut self, n: usize) {
        self.at += n;
    }
}

/// A parameter sent as the bytes recorded.
#[derive(Debug)]
struct Raw<'a>(Option<&'a [u8]>);

impl ToSql for Raw<'_> {
    fn to_sql(&self, _: &Type, out: &mut BytesMut) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
        match self.0 {
            Some(bytes) => {
                out.extend_from_slice(bytes);
                Ok(IsNull::No)
            }
            None => Ok(IsNull::Yes),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

/// Recorded statements, each prepared once on `db`, to run again and again.
pub struct Replay {
    steps: Vec<(Option<Statement>, Sent)>,
}

impl Replay {
    pub async fn prepare(db: &Client, sent: Vec<Sent>) -> Result<Self, BoxError> {
        let mut prepared: HashMap<String, Statement> = HashMap::new();
        let mut steps = Vec::with_capacity(sent.len());
        for sent in sent {
            let statement = match &sent {
                Sent::Bound { text, .. } => Some(match prepared.get(text) {
                    Some(statement) => statement.clone(),
                    None => {
                        let statement = db.prepare(text).await?;
                        prepared.insert(text.clone(), statement.clone());
                        statement
                    }
                }),
                Sent::Simple(_) => None,
            };
            steps.push((statement, sent));
        }
        Ok(Self { steps })
    }

    /// Every statement once, in order, each read to its end.
    pub async fn run(&self, db: &Client) -> Result<(), BoxError> {
        for (statement, sent) in &self.steps {
            match (statement, sent) {
                (
                    Some(statement),
                    Sent::Bound {
                        text,
                        params,
                        unnamed,
                    },
                ) => {
                    let params: Vec<Raw> = params.iter().map(|p| Raw(p.as_deref())).collect();
                    if *unnamed {
                        let typed = params.iter().zip(statement.params().iter().cloned());
                        db.query_typed_raw(text, typed)
                            .await?
                            .try_collect::<Vec<_>>()
                            .await?;
                    } else {
                        db.query(
                            statement,
                            &params
                                .iter()
                                .map(|p| p as &(dyn ToSql + Sync))
                                .collect::<Vec<_>>(),
                        )
                        .await?;
                    }
                }
                (_, Sent::Simple(text)) => db.batch_execute(text).await?,
                _ => {}
            }
        }
        Ok(())
    }

    pub fn statements(&self) -> usize {
        self.steps.len()
    }
}
