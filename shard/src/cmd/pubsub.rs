//! Pub/Sub and MONITOR commands. The server runs them all (`Route::Server`): subscriptions
//! belong to connections, not to keys.

use crate::command::{k, spec, CommandSpec, Route::Server, NO_KEYS};

const SUBSCRIBE: &[&str] = &["pubsub", "noscript", "loading", "stale"];
const PUBLISH: &[&str] = &["pubsub", "loading", "stale", "fast"];

#[rustfmt::skip]
pub static COMMANDS: &[CommandSpec] = &[
    spec("subscribe", -2, SUBSCRIBE, NO_KEYS, "pubsub", "Listens for messages published to channels.", Server),
    spec("unsubscribe", -1, SUBSCRIBE, NO_KEYS, "pubsub", "Stops listening to messages posted to channels.", Server),
    spec("psubscribe", -2, SUBSCRIBE, NO_KEYS, "pubsub", "Listens for messages published to channels that match one or more patterns.", Server),
    spec("punsubscribe", -1, SUBSCRIBE, NO_KEYS, "pubsub", "Stops listening to messages published to channels that match one or more patterns.", Server),
    spec("ssubscribe", -2, SUBSCRIBE, k(1, -1, 1), "pubsub", "Listens for messages published to shard channels.", Server),
    spec("sunsubscribe", -1, SUBSCRIBE, k(1, -1, 1), "pubsub", "Stops listening to messages posted to shard channels.", Server),
    spec("publish", 3, PUBLISH, NO_KEYS, "pubsub", "Posts a message to a channel.", Server),
    spec("spublish", 3, PUBLISH, k(1, 1, 1), "pubsub", "Post a message to a shard channel", Server),
    spec("pubsub", -2, &[], NO_KEYS, "pubsub", "A container for Pub/Sub commands.", Server).with_subcommands(&[
        ("channels", -2), ("numsub", -2), ("numpat", 2), ("shardchannels", -2), ("shardnumsub", -2), ("help", 2),
    ]),
    spec("monitor", 1, &["admin", "noscript", "loading", "stale"], NO_KEYS, "server", "Listens for all requests received by the server in real-time.", Server),
];
