//! The status page as server-rendered HTML: the page, and the fragment it re-fetches every
//! second to stay live without a reload (no front-end build, one small inline script).

use super::status::{ShardStatus, StatusSnapshot};
use std::collections::HashMap;
use std::fmt::Write;

/// How often the page re-fetches its fragment, in milliseconds.
pub const REFRESH_MILLIS: u64 = 1000;

/// Escapes text for HTML content and attribute values.
pub fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for character in text.chars() {
        match character {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            other => escaped.push(other),
        }
    }
    escaped
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}\
table{border-collapse:collapse;margin-bottom:1.5em}th,td{border:1px solid #ccc;padding:.3em .6em;white-space:nowrap;\
text-align:left;font-size:.9em}th{background:#f4f4f4}.owned{background:#e3f6e8}\
.available{background:#fde8e6}.finished{color:#888}small{color:#666}\
ul.workers li{margin:.2em 0}code{font-size:.9em}";

/// The whole page, with `snapshot` rendered in place and the refresh script.
pub fn render_page(snapshot: &StatusSnapshot) -> String {
    let title = match &snapshot.stream {
        Some(stream) => format!("kcl status: {}", escape(stream)),
        None => "kcl status".to_owned(),
    };
    format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>{STYLE}</style></head>
<body>
<h1>{title}</h1>
<p><small>live: refreshed every {REFRESH_MILLIS} ms without reloading; last update <span id="updated">at load</span>;
JSON at <a href="api/status">/api/status</a></small></p>
<div id="status" data-refreshes="0">{fragment}</div>
<script>
window.kclLoadId = Math.random().toString(36).slice(2);
(function () {{
  const status = document.getElementById('status');
  const updated = document.getElementById('updated');
  let refreshes = 0;
  async function refresh() {{
    try {{
      const response = await fetch('fragment', {{cache: 'no-store'}});
      if (response.ok) {{
        status.innerHTML = await response.text();
        refreshes += 1;
        status.dataset.refreshes = String(refreshes);
        updated.textContent = new Date().toLocaleTimeString();
      }} else {{
        updated.textContent = 'error ' + response.status;
      }}
    }} catch (error) {{
      updated.textContent = 'disconnected';
    }}
    setTimeout(refresh, {REFRESH_MILLIS});
  }}
  setTimeout(refresh, {REFRESH_MILLIS});
}})();
</script>
</body></html>
"#,
        fragment = render_fragment(snapshot)
    )
}

/// The live part: the shard table, the lineage picture and the workers.
pub fn render_fragment(snapshot: &StatusSnapshot) -> String {
    let mut html = String::new();
    let _ = write!(
        html,
        "<h2>Shards ({})</h2><table id=\"shards\"><tr><th>shard</th><th>owner</th>\
<th>counter</th><th>checkpoint</th><th>lag (ms)</th><th>parents</th><th>children</th>\
<th>state</th></tr>",
        snapshot.shards.len()
    );
    for shard in &snapshot.shards {
        shard_row(&mut html, shard);
    }
    html.push_str("</table>");
    html.push_str("<h2>Lineage</h2>");
    html.push_str(&render_lineage(&snapshot.shards));
    let _ = write!(
        html,
        "<h2>Workers ({})</h2><ul class=\"workers\" id=\"workers\">",
        snapshot.workers.len()
    );
    for worker in &snapshot.workers {
        let shards: Vec<String> = worker.shards.iter().map(|s| escape(s)).collect();
        let _ = write!(
            html,
            "<li data-worker=\"{id}\"><code>{id}</code>: {count} shard(s): {shards}</li>",
            id = escape(&worker.worker_id),
            count = worker.shards.len(),
            shards = shards.join(", ")
        );
    }
    if snapshot.workers.is_empty() {
        html.push_str("<li>no worker holds a lease</li>");
    }
    html.push_str("</ul>");
    html
}

fn shard_row(html: &mut String, shard: &ShardStatus) {
    let lease = &shard.lease;
    let owner = lease.owner.as_deref().unwrap_or("");
    let dash_if_empty = |items: &[String]| {
        if items.is_empty() {
            "-".to_owned()
        } else {
            items
                .iter()
                .map(|s| escape(s))
                .collect::<Vec<_>>()
                .join("<br>")
        }
    };
    let _ = write!(
        html,
        "<tr class=\"{state}\" data-shard=\"{id}\" data-owner=\"{owner}\"><td>{id}</td>\
<td>{owner_cell}</td><td>{counter}</td><td><code>{checkpoint}</code></td><td>{lag}</td>\
<td>{parents}</td><td>{children}</td><td>{state}</td></tr>",
        state = lease.state,
        id = escape(&lease.shard_id),
        owner = escape(owner),
        owner_cell = if owner.is_empty() {
            "-".to_owned()
        } else {
            escape(owner)
        },
        counter = lease.counter,
        checkpoint = escape(&lease.checkpoint),
        lag = lease
            .lag_millis
            .map_or_else(|| "-".to_owned(), |lag| lag.to_string()),
        parents = dash_if_empty(&lease.parents),
        children = dash_if_empty(&shard.children),
    );
}

const BOX_WIDTH: usize = 200;
const BOX_HEIGHT: usize = 42;
const COLUMN_GAP: usize = 60;
const ROW_GAP: usize = 14;
const MARGIN: usize = 10;

/// The lineage as an inline SVG: one column per generation, an arrow from each parent to
/// each child, boxes coloured by state and labelled with shard and owner.
pub fn render_lineage(shards: &[ShardStatus]) -> String {
    let mut rows_in_column: HashMap<usize, usize> = HashMap::new();
    let mut positions: HashMap<&str, (usize, usize)> = HashMap::new();
    for shard in shards {
        let row = rows_in_column.entry(shard.depth).or_insert(0);
        let x = MARGIN + shard.depth * (BOX_WIDTH + COLUMN_GAP);
        let y = MARGIN + *row * (BOX_HEIGHT + ROW_GAP);
        *row += 1;
        positions.insert(shard.lease.shard_id.as_str(), (x, y));
    }
    let columns = rows_in_column.keys().max().map_or(0, |max| max + 1);
    let rows = rows_in_column.values().max().copied().unwrap_or(0);
    let width = MARGIN * 2 + columns * BOX_WIDTH + columns.saturating_sub(1) * COLUMN_GAP;
    let height = MARGIN * 2 + rows * (BOX_HEIGHT + ROW_GAP);
    let mut svg = format!(
        "<svg id=\"lineage\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" \
height=\"{height}\" role=\"img\" aria-label=\"shard lineage\"><defs><marker id=\"arrow\" \
viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"6\" markerHeight=\"6\" \
orient=\"auto\"><path d=\"M0,0 L10,5 L0,10 z\" fill=\"#888\"/></marker></defs>"
    );
    for shard in shards {
        let Some(&(child_x, child_y)) = positions.get(shard.lease.shard_id.as_str()) else {
            continue;
        };
        for parent in &shard.lease.parents {
            if let Some(&(parent_x, parent_y)) = positions.get(parent.as_str()) {
                let _ = write!(
                    svg,
                    "<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#888\" \
marker-end=\"url(#arrow)\"/>",
                    parent_x + BOX_WIDTH,
                    parent_y + BOX_HEIGHT / 2,
                    child_x,
                    child_y + BOX_HEIGHT / 2
                );
            }
        }
    }
    for shard in shards {
        let Some(&(x, y)) = positions.get(shard.lease.shard_id.as_str()) else {
            continue;
        };
        let fill = match shard.lease.state {
            "owned" => "#e3f6e8",
            "available" => "#fde8e6",
            _ => "#eeeeee",
        };
        let owner = shard.lease.owner.as_deref().unwrap_or("no owner");
        let _ = write!(
            svg,
            "<g data-lineage-shard=\"{id}\"><rect x=\"{x}\" y=\"{y}\" width=\"{BOX_WIDTH}\" \
height=\"{BOX_HEIGHT}\" rx=\"6\" fill=\"{fill}\" stroke=\"#999\"/><text x=\"{tx}\" y=\"{ty1}\" \
font-size=\"12\" font-family=\"monospace\">{id}</text><text x=\"{tx}\" y=\"{ty2}\" \
font-size=\"11\" fill=\"#555\">{owner} · {state}</text></g>",
            id = escape(&shard.lease.shard_id),
            tx = x + 8,
            ty1 = y + 17,
            ty2 = y + 33,
            owner = escape(owner),
            state = shard.lease.state,
        );
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::leases::LeaseRow;

    fn snapshot() -> StatusSnapshot {
        let row = |shard: &str, owner: Option<&str>, parents: &[&str], state| LeaseRow {
            shard_id: shard.to_owned(),
            owner: owner.map(str::to_owned),
            counter: 7,
            checkpoint: "TRIM_HORIZON".to_owned(),
            parents: parents.iter().map(|p| (*p).to_owned()).collect(),
            state,
            lag_millis: Some(12),
        };
        StatusSnapshot::from_rows(
            Some("s<1>".to_owned()),
            vec![
                row("shardId-0", Some("w\"1"), &[], "finished"),
                row("shardId-1", Some("w2"), &["shardId-0"], "owned"),
                row("shardId-2", None, &["shardId-0"], "available"),
            ],
        )
    }

    #[test]
    fn the_page_shows_every_shard_escaped_with_lineage_and_workers() {
        let page = render_page(&snapshot());
        for shard in ["shardId-0", "shardId-1", "shardId-2"] {
            assert!(page.contains(&format!("data-shard=\"{shard}\"")), "{shard}");
            assert!(
                page.contains(&format!("data-lineage-shard=\"{shard}\"")),
                "{shard}"
            );
        }
        assert!(page.contains("kcl status: s&lt;1&gt;"));
        assert!(page.contains("data-owner=\"w&quot;1\""));
        assert!(!page.contains("w\"1"), "owners are escaped");
        // Two parent → child arrows.
        assert_eq!(page.matches("<line ").count(), 2);
        assert!(page.contains("data-worker=\"w2\""));
        assert!(page.contains("setTimeout(refresh"));
    }

    #[test]
    fn escape_covers_the_five_characters() {
        assert_eq!(
            escape(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }
}
