//! The client library, used by `gpaxos-node client` and by the harness.
//!
//! A [`Client`] knows the cluster's addresses and keeps one connection per
//! node it has used. An operation becomes a [`Command`] with a fresh id
//! `(client, seq)`; if the node does not answer in time the same command
//! (same id) is sent again, to the same node or the next one, so a retried
//! operation is applied at most once (histories have no duplicates).

mod proto;

pub use proto::{ClientRequest, ClientResponse, Status};

use crate::app::Reply;
use crate::command::{CmdId, Command, Op};
use crate::net::{ClientChannel, ClientDialer, ClientOptions, Credentials};
use crate::protocol::node_name;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::time::timeout;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("no node of the cluster answered within {0:?}")]
    Unavailable(Duration),
    #[error("{node} refused the request: {message}")]
    Refused { node: String, message: String },
    #[error("{node} answered with an unexpected response: {response:?}")]
    Unexpected {
        node: String,
        response: Box<ClientResponse>,
    },
    #[error(transparent)]
    Net(#[from] crate::net::NetError),
}

/// How a client retries.
#[derive(Clone, Debug)]
pub struct RetryPolicy {
    /// How long one attempt waits for an answer.
    pub attempt: Duration,
    /// How long an operation may take over all attempts.
    pub total: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempt: Duration::from_secs(2),
            total: Duration::from_secs(10),
        }
    }
}

/// A page of a node's learned sequence (see [`ClientResponse::Learned`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LearnedPage {
    pub from: u64,
    pub total: u64,
    pub cmds: Vec<Command>,
    pub rewrites: u64,
    pub rewritten_at: u64,
}

pub struct Client {
    dialer: ClientDialer,
    nodes: Vec<SocketAddr>,
    channels: Vec<Option<ClientChannel<ClientRequest, ClientResponse>>>,
    /// The node tried first; moves on when one does not answer.
    preferred: usize,
    client_id: u64,
    seq: u64,
    pub retry: RetryPolicy,
}

impl Client {
    /// A client of the cluster whose node `i` listens at `nodes[i]`. Its
    /// command ids use `client_id`, which must be unique among clients.
    pub fn new(
        credentials: &Credentials,
        nodes: Vec<SocketAddr>,
        client_id: u64,
    ) -> Result<Client, ClientError> {
        let dialer = ClientDialer::new(credentials, ClientOptions::default())?;
        let channels = nodes.iter().map(|_| None).collect();
        Ok(Client {
            dialer,
            nodes,
            channels,
            preferred: 0,
            client_id,
            seq: 0,
            retry: RetryPolicy::default(),
        })
    }

    /// Prefer node `i` (0-based) for the next requests.
    pub fn prefer(&mut self, i: usize) {
        if i < self.nodes.len() {
            self.preferred = i;
        }
    }

    pub fn client_id(&self) -> u64 {
        self.client_id
    }

    /// The id the next command will get.
    pub fn next_id(&self) -> CmdId {
        CmdId {
            client: self.client_id,
            seq: self.seq + 1,
        }
    }

    /// One attempt of `req` at node `i`.
    pub async fn request_at(
        &mut self,
        i: usize,
        req: &ClientRequest,
    ) -> Result<ClientResponse, ClientError> {
        let name = node_name(i as u32);
        // A channel kept from an earlier call may belong to a connection
        // the node dropped since (it restarted): that call fails at once,
        // having reached no one, and is made again on a fresh connection.
        // Repeating a submit is safe too: the node answers a repeated id
        // from its client session.
        let reused = self.channels[i].is_some();
        match self.call_at(i, &name, req).await {
            Err(ClientError::Refused { .. }) if reused => self.call_at(i, &name, req).await,
            other => other,
        }
    }

    async fn call_at(
        &mut self,
        i: usize,
        name: &str,
        req: &ClientRequest,
    ) -> Result<ClientResponse, ClientError> {
        if self.channels[i].is_none() {
            let conn = timeout(self.retry.attempt, self.dialer.connect(self.nodes[i], name))
                .await
                .map_err(|_| ClientError::Unavailable(self.retry.attempt))??;
            let channel = timeout(self.retry.attempt, conn.open())
                .await
                .map_err(|_| ClientError::Unavailable(self.retry.attempt))??;
            self.channels[i] = Some(channel);
        }
        let channel = self.channels[i].as_mut().expect("connected above");
        match timeout(self.retry.attempt, channel.call(req)).await {
            Ok(Ok(resp)) => Ok(resp),
            Ok(Err(e)) => {
                self.channels[i] = None;
                Err(ClientError::Refused {
                    node: name.to_owned(),
                    message: e.to_string(),
                })
            }
            Err(_) => {
                // The answer may still come on this stream; start afresh.
                self.channels[i] = None;
                Err(ClientError::Unavailable(self.retry.attempt))
            }
        }
    }

    /// Sends `req` to the preferred node, then to the others in turn, until
    /// one answers or the total time is up.
    pub async fn request(
        &mut self,
        req: &ClientRequest,
    ) -> Result<(usize, ClientResponse), ClientError> {
        let deadline = tokio::time::Instant::now() + self.retry.total;
        let mut last = ClientError::Unavailable(self.retry.total);
        let mut i = self.preferred;
        while tokio::time::Instant::now() < deadline {
            match self.request_at(i, req).await {
                Ok(ClientResponse::Error { message }) => {
                    last = ClientError::Refused {
                        node: node_name(i as u32),
                        message,
                    };
                }
                Ok(resp) => {
                    self.preferred = i;
                    return Ok((i, resp));
                }
                Err(e) => last = e,
            }
            i = (i + 1) % self.nodes.len();
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Err(last)
    }

    /// Proposes `cmd` (keeping its id across retries) and waits until a node
    /// has applied it.
    pub async fn submit(&mut self, cmd: Command) -> Result<Reply, ClientError> {
        let req = ClientRequest::Submit { cmd };
        match self.request(&req).await? {
            (_, ClientResponse::Applied { reply }) => Ok(reply),
            (i, other) => Err(ClientError::Unexpected {
                node: node_name(i as u32),
                response: Box::new(other),
            }),
        }
    }

    /// Runs `op` as a new command of this client.
    pub async fn execute(&mut self, op: Op) -> Result<Reply, ClientError> {
        self.seq += 1;
        self.submit(Command::new(self.client_id, self.seq, op))
            .await
    }

    pub async fn status(&mut self, i: usize) -> Result<Status, ClientError> {
        match self.request_at(i, &ClientRequest::Status).await? {
            ClientResponse::Status(s) => Ok(*s),
            other => Err(ClientError::Unexpected {
                node: node_name(i as u32),
                response: Box::new(other),
            }),
        }
    }

    /// Node `i`'s learned sequence from `from`, at most `max` commands, and
    /// its total length. Fails if `from` was compacted away.
    pub async fn learned(
        &mut self,
        i: usize,
        from: u64,
        max: u32,
    ) -> Result<(u64, Vec<Command>), ClientError> {
        let page = self.learned_page(i, from, max).await?;
        if page.from != from {
            return Err(ClientError::Refused {
                node: node_name(i as u32),
                message: format!(
                    "positions below {} of the learned sequence were compacted away (asked from {from})",
                    page.from
                ),
            });
        }
        Ok((page.total, page.cmds))
    }

    /// Node `i`'s learned sequence from `from` (or from the first position
    /// it still holds), at most `max` commands, with its total length and
    /// how snapshots from peers rewrote it.
    pub async fn learned_page(
        &mut self,
        i: usize,
        from: u64,
        max: u32,
    ) -> Result<LearnedPage, ClientError> {
        match self
            .request_at(i, &ClientRequest::Learned { from, max })
            .await?
        {
            ClientResponse::Learned {
                from,
                total,
                cmds,
                rewrites,
                rewritten_at,
            } => Ok(LearnedPage {
                from,
                total,
                cmds,
                rewrites,
                rewritten_at,
            }),
            other => Err(ClientError::Unexpected {
                node: node_name(i as u32),
                response: Box::new(other),
            }),
        }
    }
}
