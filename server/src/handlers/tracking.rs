//! CLIENT TRACKING, CACHING, GETREDIR and TRACKINGINFO (client-side caching).

use bytes::Bytes;
use corekv_net::Reply;
use corekv_shard::args::{is, parse_i64};
use corekv_shard::errors;

use crate::session::Session;
use crate::tracking;

/// CLIENT TRACKING ON|OFF [REDIRECT id] [PREFIX p]... [BCAST] [OPTIN] [OPTOUT] [NOLOOP]
pub async fn tracking(s: &mut Session, args: &[Bytes]) -> Reply {
    let on = if is(&args[2], "on") {
        true
    } else if is(&args[2], "off") {
        false
    } else {
        return errors::syntax();
    };
    let mut next = s.tracking.as_deref().cloned().unwrap_or_default();
    let was_on = s.tracking.is_some();
    let (mut bcast, mut optin, mut optout) = (false, false, false);
    let mut redirect = None;
    let mut prefixes = Vec::new();
    let mut i = 3;
    while i < args.len() {
        let a = &args[i];
        let value = args.get(i + 1);
        if is(a, "redirect") && value.is_some() {
            match value.and_then(|v| parse_i64(v)) {
                Some(id) => redirect = Some(id),
                None => return errors::not_integer(),
            }
            i += 1;
        } else if is(a, "prefix") && value.is_some() {
            prefixes.extend(value.cloned());
            i += 1;
        } else if is(a, "bcast") {
            bcast = true;
        } else if is(a, "optin") {
            optin = true;
        } else if is(a, "optout") {
            optout = true;
        } else if is(a, "noloop") {
            next.noloop = true;
        } else {
            return errors::syntax();
        }
        i += 1;
    }
    if !on {
        tracking::stop(s).await;
        return Reply::Ok;
    }
    if was_on && next.bcast != bcast {
        return Reply::error("ERR You can't switch BCAST mode on/off before disabling tracking for this client, and then re-enabling it with a different mode.");
    }
    if optin && optout {
        return Reply::error("ERR You can't specify both OPTIN mode and OPTOUT mode");
    }
    if was_on && ((optin && next.optout) || (optout && next.optin)) {
        return Reply::error("ERR You can't switch OPTIN/OPTOUT mode before disabling tracking for this client, and then re-enabling it with a different mode.");
    }
    if bcast && (optin || optout) {
        return Reply::error("ERR OPTIN and OPTOUT are not compatible with BCAST");
    }
    if !bcast && !prefixes.is_empty() {
        return Reply::error("ERR PREFIX option requires BCAST mode to be enabled");
    }
    if let Err(e) = check_prefixes(&next.prefixes, &prefixes) {
        return e;
    }
    if let Some(id) = redirect {
        match tracking::find_client(s, id as u64).await {
            Some(executor) if id > 0 => next.redirect = Some((id as u64, executor)),
            _ => return Reply::error("ERR The client ID you want redirect to does not exist"),
        }
    }
    next.bcast = bcast;
    next.optin |= optin;
    next.optout |= optout;
    next.prefixes.extend(prefixes);
    tracking::start(s, next).await;
    Reply::Ok
}

/// Redis refuses prefixes of one client that overlap (one a prefix of another).
fn check_prefixes(existing: &[Bytes], new: &[Bytes]) -> Result<(), Reply> {
    let overlap = |a: &Bytes, b: &Bytes| a.starts_with(b) || b.starts_with(a);
    let text = |b: &Bytes| String::from_utf8_lossy(b).into_owned();
    for (i, p) in new.iter().enumerate() {
        if let Some(e) = existing.iter().find(|e| overlap(p, e)) {
            return Err(Reply::error(format!(
                "ERR Prefix '{}' overlaps with an existing prefix '{}'. Prefixes for a single client must not overlap.",
                text(p),
                text(e)
            )));
        }
        if let Some(o) = new[i + 1..].iter().find(|o| overlap(p, o)) {
            return Err(Reply::error(format!(
                "ERR Prefix '{}' overlaps with another provided prefix '{}'. Prefixes for a single client must not overlap.",
                text(p),
                text(o)
            )));
        }
    }
    Ok(())
}

/// CLIENT CACHING YES|NO: whether the next command's keys are tracked (OPTIN/OPTOUT).
pub fn caching(s: &mut Session, args: &[Bytes]) -> Reply {
    let Some(t) = s.tracking.as_mut().filter(|t| t.optin || t.optout) else {
        return Reply::error("ERR CLIENT CACHING can be called only when the client is in tracking mode with OPTIN or OPTOUT mode enabled");
    };
    if is(&args[2], "yes") && t.optin {
        t.caching = Some(true);
    } else if is(&args[2], "no") && t.optout {
        t.caching = Some(false);
    } else if is(&args[2], "yes") {
        return Reply::error(
            "ERR CLIENT CACHING YES is only valid when tracking is enabled in OPTIN mode.",
        );
    } else if is(&args[2], "no") {
        return Reply::error(
            "ERR CLIENT CACHING NO is only valid when tracking is enabled in OPTOUT mode.",
        );
    } else {
        return errors::syntax();
    }
    Reply::Ok
}

/// CLIENT GETREDIR: -1 when not tracking, 0 without a redirect, else the target's id.
pub fn getredir(s: &Session) -> Reply {
    Reply::Int(redirect(s))
}

fn redirect(s: &Session) -> i64 {
    match &s.tracking {
        None => -1,
        Some(t) => t.redirect.map_or(0, |(id, _)| id as i64),
    }
}

/// CLIENT TRACKINGINFO
pub fn trackinginfo(s: &Session) -> Reply {
    let mut flags = Vec::new();
    let mut prefixes = Vec::new();
    match &s.tracking {
        None => flags.push("off"),
        Some(t) => {
            flags.push("on");
            for (set, name) in [
                (t.bcast, "bcast"),
                (t.optin, "optin"),
                (t.optout, "optout"),
                (t.caching == Some(true), "caching-yes"),
                (t.caching == Some(false), "caching-no"),
                (t.noloop, "noloop"),
            ] {
                if set {
                    flags.push(name);
                }
            }
            prefixes = t.prefixes.iter().cloned().map(Reply::Bulk).collect();
        }
    }
    Reply::Map(vec![
        (
            Reply::bulk("flags"),
            Reply::Set(flags.into_iter().map(Reply::bulk).collect()),
        ),
        (Reply::bulk("redirect"), Reply::Int(redirect(s))),
        (Reply::bulk("prefixes"), Reply::Array(prefixes)),
    ])
}
