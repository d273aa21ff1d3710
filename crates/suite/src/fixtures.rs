//! The payload shapes the suites exchange with every server and client:
//! binary nested in objects, both ways.

use serde::{Deserialize, Serialize};
use socketio::Binary;

/// What a client uploads: a file and its parts, all binary, at two depths.
#[derive(Debug, Serialize, Deserialize)]
pub struct Upload {
    /// A name.
    pub name: String,
    /// The file, an attachment.
    pub file: Binary,
    /// More attachments, one level down.
    pub meta: UploadMeta,
}

/// The nested part of an [`Upload`].
#[derive(Debug, Serialize, Deserialize)]
pub struct UploadMeta {
    /// Attachments in an array.
    pub parts: Vec<Binary>,
}

/// The answer to an upload (`interop/server.mjs`'s, and ours in the same
/// shape): what the server saw, and binary sent back.
#[derive(Debug, Serialize, Deserialize)]
pub struct Receipt {
    /// The server saw real buffers.
    pub ok: bool,
    /// The upload's name.
    pub name: String,
    /// The file's length.
    pub size: usize,
    /// The parts' lengths.
    pub parts: Vec<usize>,
    /// Binary sent back.
    pub back: Back,
}

/// Binary in the answer, in a tuple inside an object.
#[derive(Debug, Serialize, Deserialize)]
pub struct Back {
    /// `[1, 2, 3]` and the upload's first part.
    pub inner: (Binary, Binary),
}
