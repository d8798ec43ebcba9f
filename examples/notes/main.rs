//! Notes behind OAuth: `list_notes` needs scope `notes:read`, `add_note` needs
//! `notes:write`, `whoami` (no scope) shows the caller. Serves stdio,
//! or Streamable HTTP with `--bind 127.0.0.1:8080`; with `[auth] mode =
//! "resource_server"` every HTTP request needs a bearer token from the
//! configured issuer (see `examples/notes/README.md`).
use std::sync::Mutex;

use mcp_server::core::identity::SubjectKind;
use mcp_server::{Identity, Server, State, tool};
use schemars::JsonSchema;
use serde::Serialize;

/// The notes, shared by every caller.
#[derive(Default)]
struct Notes(Mutex<Vec<Note>>);

#[derive(Clone, Serialize, JsonSchema)]
struct Note {
    /// Position in the list, from 1.
    id: usize,
    text: String,
    /// The subject that added it (`anonymous` without auth).
    author: String,
}

#[derive(Serialize, JsonSchema)]
struct NoteList {
    notes: Vec<Note>,
}

#[derive(Serialize, JsonSchema)]
struct Caller {
    /// `false` when auth is off (stdio, or `[auth] mode = "none"`).
    authenticated: bool,
    /// Who issued the token.
    issuer: Option<String>,
    subject: Option<String>,
    /// `true` when the subject is an OAuth client acting for itself (a
    /// client-credentials token without `sub`), not a user.
    client_acting_for_itself: bool,
    client_id: Option<String>,
    scopes: Vec<String>,
}

/// Lists every note.
#[tool(scopes = ["notes:read"], annotations(read_only_hint = true))]
async fn list_notes(State(notes): State<Notes>) -> NoteList {
    let notes = notes.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
    NoteList { notes }
}

/// Adds a note and returns it.
#[tool(scopes = ["notes:write"])]
async fn add_note(State(notes): State<Notes>, caller: Option<Identity>, text: String) -> Note {
    let mut notes = notes.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let author = caller.map_or_else(|| "anonymous".to_owned(), |c| c.subject);
    let note = Note { id: notes.len() + 1, text, author };
    notes.push(note.clone());
    note
}

/// Who is calling: the token's subject, client and scopes.
#[tool(annotations(read_only_hint = true))]
async fn whoami(caller: Option<Identity>) -> Caller {
    match caller {
        None => Caller {
            authenticated: false,
            issuer: None,
            subject: None,
            client_acting_for_itself: false,
            client_id: None,
            scopes: Vec::new(),
        },
        Some(who) => Caller {
            authenticated: true,
            client_acting_for_itself: who.subject_kind == SubjectKind::Client,
            issuer: who.issuer,
            subject: Some(who.subject),
            client_id: who.client_id,
            scopes: who.scopes,
        },
    }
}

#[tokio::main]
async fn main() -> Result<(), mcp_server::ServeError> {
    tracing_subscriber::fmt().with_writer(std::io::stderr).with_env_filter(env_filter()).init();
    Server::new("notes", "1.0.0")
        .state(Notes::default())
        .tool(list_notes)
        .tool(add_note)
        .tool(whoami)
        .serve_from_args()
        .await
}

fn env_filter() -> tracing_subscriber::EnvFilter {
    tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into())
}
