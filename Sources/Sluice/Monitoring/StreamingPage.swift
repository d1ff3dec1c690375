/// The Streaming page (`/streaming/`) and a batch's page (`/streaming/batch/?id=`), as Spark's Streaming tab
/// shows them: the pages are static HTML; their script reads the JSON API every second and draws the timelines
/// and histograms as SVG. Text from the program (the app name, receiver names, errors) reaches the page only
/// as text: escaped here, and set through `textContent` by the script, which the server's
/// Content-Security-Policy makes the only script that can run.
enum StreamingPage {
    static func streaming(appName: String) -> String {
        page(title: "Streaming Statistics", appName: appName, script: "streaming.js")
    }

    static func batch(appName: String) -> String {
        page(title: "Batch Details", appName: appName, script: "batch.js")
    }

    /// A file under `/static/`.
    static func asset(_ name: String) -> (contentType: String, text: String)? {
        switch name {
        case "sluice.css": return ("text/css; charset=utf-8", css)
        case "common.js": return ("text/javascript; charset=utf-8", commonScript)
        case "streaming.js": return ("text/javascript; charset=utf-8", streamingScript)
        case "batch.js": return ("text/javascript; charset=utf-8", batchScript)
        default: return nil
        }
    }

    /// `text` with HTML's special characters escaped, for element content and quoted attribute values.
    static func escaped(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for character in text {
            switch character {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.append(character)
            }
        }
        return out
    }

    private static func page(title: String, appName: String, script: String) -> String {
        let name = escaped(appName)
        return """
            <!DOCTYPE html>
            <html lang="en">
            <head>
            <meta charset="utf-8">
            <title>\(name) - \(title)</title>
            <link rel="icon" href="data:,">
            <link rel="stylesheet" href="/static/sluice.css">
            </head>
            <body>
            <header><a href="/streaming/" class="brand">Sluice</a> <span id="app-name">\(name)</span>
            <span class="nav">Streaming</span> <span id="connection" class="connection"></span></header>
            <main id="main"><h1>\(title)</h1><p id="summary">Loading…</p></main>
            <script src="/static/common.js"></script>
            <script src="/static/\(script)"></script>
            </body>
            </html>

            """
    }

    private static let css = """
        body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 0; color: #222; font-size: 14px; }
        header { background: #1f3b57; color: #fff; padding: 8px 16px; }
        header a.brand { color: #fff; font-weight: bold; text-decoration: none; margin-right: 12px; }
        header .nav { margin-left: 24px; opacity: 0.8; }
        header .connection { float: right; opacity: 0.8; }
        main { padding: 8px 16px 32px; }
        h1 { font-size: 22px; font-weight: 500; }
        h2 { font-size: 17px; font-weight: 500; margin-top: 24px; }
        table { border-collapse: collapse; margin: 4px 0 12px; }
        th, td { border: 1px solid #ddd; padding: 4px 8px; text-align: left; vertical-align: top; }
        th { background: #f4f4f4; font-weight: 600; }
        table.charts td { border: none; }
        .metric { width: 210px; }
        .metric .avg { color: #555; }
        svg { background: #fff; }
        svg .axis { stroke: #999; stroke-width: 1; }
        svg .line { fill: none; stroke: #4a90d9; stroke-width: 1.5; }
        svg .point { fill: #4a90d9; }
        svg .bar { fill: #8fb8e8; }
        svg .label { font-size: 10px; fill: #555; }
        .failed { color: #b00020; }
        pre.error { white-space: pre-wrap; max-width: 900px; color: #b00020; margin: 0; }
        dl.facts { display: grid; grid-template-columns: max-content auto; gap: 2px 16px; }
        dl.facts dt { font-weight: 600; }
        dl.facts dd { margin: 0; }

        """

    private static let commonScript = #"""
        "use strict";
        // Shared by the pages: JSON fetching, formatting, and DOM building that only ever makes text nodes.
        const Sluice = (function () {
          const SVG = "http://www.w3.org/2000/svg";
          let app = null;

          function el(tag, attributes, ...children) {
            const node = document.createElement(tag);
            for (const [key, value] of Object.entries(attributes || {})) node.setAttribute(key, String(value));
            for (const child of children) {
              if (child === null || child === undefined) continue;
              node.append(child instanceof Node ? child : document.createTextNode(String(child)));
            }
            return node;
          }

          function svg(tag, attributes) {
            const node = document.createElementNS(SVG, tag);
            for (const [key, value] of Object.entries(attributes || {})) node.setAttribute(key, String(value));
            return node;
          }

          async function json(path) {
            const response = await fetch(path, { cache: "no-store" });
            if (!response.ok) throw new Error(path + " answered " + response.status);
            return response.json();
          }

          async function application() {
            if (app === null) {
              const apps = await json("/api/v1/applications");
              app = apps[0];
            }
            return app;
          }

          async function api(path) {
            const current = await application();
            return json("/api/v1/applications/" + encodeURIComponent(current.id) + "/streaming/" + path);
          }

          function duration(ms) {
            if (ms === null || ms === undefined) return "-";
            if (ms < 1000) return ms + " ms";
            if (ms < 60000) return (ms / 1000).toFixed(1) + " s";
            if (ms < 3600000) return (ms / 60000).toFixed(1) + " min";
            return (ms / 3600000).toFixed(1) + " h";
          }

          function bytes(n) {
            if (n === null || n === undefined) return "-";
            const units = ["B", "KiB", "MiB", "GiB", "TiB"];
            let value = n, unit = 0;
            while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit += 1; }
            return (unit === 0 ? value : value.toFixed(1)) + " " + units[unit];
          }

          function rate(r) {
            if (r === null || r === undefined) return "-";
            if (r >= 1e6) return (r / 1e6).toFixed(2) + "M records/s";
            if (r >= 1e4) return (r / 1e3).toFixed(1) + "k records/s";
            return r.toFixed(r >= 100 ? 0 : 2) + " records/s";
          }

          // Spark writes dates as 2026-12-03T13:27:00.123GMT.
          function date(text) {
            if (!text) return "-";
            const parsed = new Date(text.replace(/GMT$/, "Z"));
            return isNaN(parsed.getTime()) ? text : parsed.toLocaleString();
          }

          // A batch's time to the millisecond (batches may be less than a second apart).
          function batchTime(ms) {
            const time = new Date(ms);
            const millis = String(time.getMilliseconds()).padStart(3, "0");
            return time.toLocaleTimeString([], { hour12: false }) + "." + millis;
          }

          function table(headers, rows, attributes) {
            return el("table", attributes || {},
              el("thead", {}, el("tr", {}, ...headers.map((h) => el("th", {}, h)))),
              el("tbody", {}, ...rows.map((cells) => el("tr", {}, ...cells.map((c) => el("td", {}, c))))));
          }

          // Runs refresh now and then every second (never two at once); the header says when the server is gone.
          function poll(refresh) {
            let busy = false;
            const tick = async () => {
              if (busy) return;
              busy = true;
              const status = document.getElementById("connection");
              try {
                await refresh();
                status.textContent = "updated " + new Date().toLocaleTimeString();
              } catch (error) {
                app = null;  // a restarted program has a new application id
                status.textContent = "not connected: " + error.message;
              } finally {
                busy = false;
              }
            };
            tick();
            setInterval(tick, 1000);
          }

          return { el, svg, json, api, application, duration, bytes, rate, date, batchTime, table, poll };
        })();

        """#

    private static let streamingScript = #"""
        "use strict";
        (function () {
          const { el, svg, api, application, duration, bytes, rate, date, batchTime, table, poll } = Sluice;
          const main = document.getElementById("main");
          const width = 520, height = 150, left = 48, bottom = 20;

          // A timeline: one point per batch (time, value), with its axis labels.
          function timeline(id, points, unit, xMin, xMax) {
            const chart = svg("svg", { id: id, class: "timeline", width: width, height: height, "data-points": points.length });
            const yMax = Math.max(1, ...points.map((p) => p[1]));
            const x = (t) => left + (xMax > xMin ? (t - xMin) / (xMax - xMin) : 0.5) * (width - left - 8);
            const y = (v) => height - bottom - (v / yMax) * (height - bottom - 8);
            chart.append(svg("line", { class: "axis", x1: left, y1: height - bottom, x2: width - 4, y2: height - bottom }));
            chart.append(svg("line", { class: "axis", x1: left, y1: 4, x2: left, y2: height - bottom }));
            const top = svg("text", { class: "label", x: 2, y: 12 });
            top.textContent = axisLabel(yMax, unit);
            chart.append(top);
            if (points.length > 0) {
              const from = svg("text", { class: "label", x: left, y: height - 4 });
              from.textContent = batchTime(xMin);
              const to = svg("text", { class: "label", x: width - 70, y: height - 4 });
              to.textContent = batchTime(xMax);
              chart.append(from, to);
              chart.append(svg("polyline", { class: "line", points: points.map((p) => x(p[0]) + "," + y(p[1])).join(" ") }));
              for (const p of points) {
                const dot = svg("circle", { class: "point", cx: x(p[0]), cy: y(p[1]), r: 2.5 });
                const tip = svg("title", {});
                tip.textContent = batchTime(p[0]) + ": " + formatValue(p[1], unit);
                dot.append(tip);
                chart.append(dot);
              }
            }
            return chart;
          }

          // A histogram of the values in ten bins, bars upwards, counts on top.
          function histogram(id, values, unit) {
            const w = 300;
            const chart = svg("svg", { id: id, class: "histogram", width: w, height: height, "data-values": values.length });
            chart.append(svg("line", { class: "axis", x1: 4, y1: height - bottom, x2: w - 4, y2: height - bottom }));
            if (values.length === 0) return chart;
            const bins = 10;
            const max = Math.max(...values), min = Math.min(...values);
            const span = max > min ? (max - min) / bins : 1;
            const counts = new Array(bins).fill(0);
            for (const v of values) counts[Math.min(bins - 1, Math.floor((v - min) / span))] += 1;
            const most = Math.max(...counts);
            const barWidth = (w - 8) / bins;
            counts.forEach((count, i) => {
              const h = (count / most) * (height - bottom - 16);
              const bar = svg("rect", { class: "bar", x: 4 + i * barWidth + 1, y: height - bottom - h, width: barWidth - 2, height: h });
              const tip = svg("title", {});
              tip.textContent = formatValue(min + i * span, unit) + " to " + formatValue(min + (i + 1) * span, unit) + ": " + count;
              bar.append(tip);
              chart.append(bar);
            });
            const low = svg("text", { class: "label", x: 4, y: height - 4 });
            low.textContent = axisLabel(min, unit);
            const high = svg("text", { class: "label", x: w - 70, y: height - 4 });
            high.textContent = axisLabel(max, unit);
            chart.append(low, high);
            return chart;
          }

          function formatValue(v, unit) {
            return unit === "ms" ? duration(Math.round(v)) : rate(v);
          }

          // Axis labels are short: "1.01M/s" rather than "1.01M records/s".
          function axisLabel(v, unit) {
            return formatValue(v, unit).replace(" records/s", "/s");
          }

          function average(values) {
            return values.length === 0 ? null : values.reduce((a, b) => a + b, 0) / values.length;
          }

          function batchLink(batch) {
            return el("a", { href: "/streaming/batch/?id=" + encodeURIComponent(batch.batchId), class: "batch-link" },
              batchTime(batch.batchId));
          }

          function batchRows(batches, completed) {
            return batches.map((b) => {
              const cells = [batchLink(b), rate(b.inputSize * 1000 / b.batchDuration), duration(b.schedulingDelay),
                duration(b.processingTime)];
              if (completed) cells.push(duration(b.totalDelay));
              cells.push(b.numCompletedOutputOps + "/" + b.numTotalOutputOps + (b.numFailedOutputOps > 0 ? " (" + b.numFailedOutputOps + " failed)" : ""));
              cells.push(b.firstFailureReason ? el("pre", { class: "error" }, b.firstFailureReason) : "");
              if (!completed) cells.splice(1, 0, b.status.toLowerCase());
              return cells;
            });
          }

          async function refresh() {
            const app = await application();
            const [stats, batches, receivers, engine] = await Promise.all([
              api("statistics"), api("batches"), api("receivers"), api("sluice").catch(() => null)]);
            const completed = batches.filter((b) => b.status === "COMPLETED");
            const active = batches.filter((b) => b.status !== "COMPLETED");
            const ordered = completed.slice().reverse();
            const xMin = ordered.length ? ordered[0].batchId : 0, xMax = ordered.length ? ordered[ordered.length - 1].batchId : 1;
            const series = [
              ["input-rate", "Input Rate", ordered.map((b) => [b.batchId, b.inputSize * 1000 / b.batchDuration]), "rate"],
              ["scheduling-delay", "Scheduling Delay", ordered.filter((b) => b.schedulingDelay !== undefined).map((b) => [b.batchId, b.schedulingDelay]), "ms"],
              ["processing-time", "Processing Time", ordered.filter((b) => b.processingTime !== undefined).map((b) => [b.batchId, b.processingTime]), "ms"],
              ["total-delay", "Total Delay", ordered.filter((b) => b.totalDelay !== undefined).map((b) => [b.batchId, b.totalDelay]), "ms"],
            ];

            const content = [el("h1", {}, "Streaming Statistics")];
            content.push(el("p", { id: "summary" },
              (app.attempts[0].completed ? "Ran" : "Running") + " batches of " + duration(stats.batchDuration) + " for " +
              duration(app.attempts[0].duration) + " since " + date(stats.startTime) + " (" +
              stats.numTotalCompletedBatches + " completed batches, " + stats.numProcessedRecords + " records)"));
            const chartRows = series.map(([id, title, points, unit]) => {
              const avg = average(points.map((p) => p[1]));
              return el("tr", {},
                el("td", { class: "metric" }, el("strong", {}, title), el("br"),
                  el("span", { class: "avg" }, "avg: " + (avg === null ? "-" : formatValue(avg, unit)))),
                el("td", {}, timeline("timeline-" + id, points, unit, xMin, xMax)),
                el("td", {}, histogram("histogram-" + id, points.map((p) => p[1]), unit)));
            });
            content.push(el("table", { class: "charts" }, el("tbody", {}, ...chartRows)));

            content.push(el("h2", {}, "Receivers (" + receivers.length + ")"));
            content.push(table(["Stream", "Name", "State", "Avg rate", "Last error"], receivers.map((r) => [
              String(r.streamId), r.streamName, r.isActive ? "ACTIVE" : "INACTIVE", rate(r.avgEventRate),
              r.lastErrorMessage ? el("pre", { class: "error" }, date(r.lastErrorTime) + ": " + r.lastErrorMessage) : "-"]),
              { id: "receivers" }));

            if (engine) {
              content.push(el("h2", {}, "Engine"));
              const facts = el("dl", { class: "facts", id: "engine" });
              const add = (term, value) => facts.append(el("dt", {}, term), el("dd", {}, value));
              add("Memory budget used", bytes(engine.memory.reservedBytes) + " of " +
                (engine.memory.limitBytes === undefined ? "no limit" : bytes(engine.memory.limitBytes)) +
                Object.entries(engine.memory.byCategory || {}).map(([c, b]) => ", " + c + " " + bytes(b)).join(""));
              add("Spilled", bytes(engine.spill.bytesSpilled) + " (" + bytes(engine.spill.bytesOnDisk) + " on disk, " +
                engine.spill.liveFiles + " files live)");
              add("Checkpoints", engine.checkpoints.count + " written, mean " +
                duration(Math.round(engine.checkpoints.count ? engine.checkpoints.totalMilliseconds / engine.checkpoints.count : 0)) +
                ", max " + duration(Math.round(engine.checkpoints.maxMilliseconds)));
              for (const log of engine.writeAheadLogs) {
                add("Write-ahead log, stream " + log.streamId, log.appends.count + " appends, mean " +
                  (log.appends.count ? (log.appends.totalMilliseconds / log.appends.count).toFixed(2) : "0") + " ms, max " +
                  log.appends.maxMilliseconds.toFixed(2) + " ms");
              }
              for (const state of engine.states) add("State of " + state.name + " (stream " + state.streamId + ")", state.keys + " keys");
              if (engine.droppedEvents > 0) add("Events dropped", String(engine.droppedEvents));
              content.push(facts);
            }

            content.push(el("h2", {}, "Active Batches (" + active.length + ")"));
            content.push(table(["Batch Time", "Status", "Input Rate", "Scheduling Delay", "Processing Time", "Output Ops: Succeeded/Total", "Error"],
              batchRows(active, false), { id: "active-batches" }));
            content.push(el("h2", {}, "Completed Batches (last " + completed.length + " out of " + stats.numTotalCompletedBatches + ")"));
            content.push(table(["Batch Time", "Input Rate", "Scheduling Delay", "Processing Time", "Total Delay", "Output Ops: Succeeded/Total", "Error"],
              batchRows(completed, true), { id: "completed-batches" }));
            main.replaceChildren(...content);
          }

          poll(refresh);
        })();

        """#

    private static let batchScript = #"""
        "use strict";
        (function () {
          const { el, api, duration, rate, date, batchTime, table, poll } = Sluice;
          const main = document.getElementById("main");
          const id = new URLSearchParams(window.location.search).get("id") || "";

          async function refresh() {
            if (!/^-?[0-9]+$/.test(id)) {
              main.replaceChildren(el("h1", {}, "Batch Details"), el("p", { class: "failed" }, "No batch id in the address (?id=<batch time in ms>)."));
              return;
            }
            let batch;
            try {
              batch = await api("batches/" + id);
            } catch (error) {
              main.replaceChildren(el("h1", {}, "Batch Details"), el("p", { class: "failed" }, "Batch " + id + " is not kept (or not yet made)."));
              return;
            }
            const [operations, inputs] = await Promise.all([api("batches/" + id + "/operations"), api("batches/" + id + "/inputs")]);
            const content = [el("h1", { id: "batch-title" }, "Details of batch at " + batchTime(batch.batchId))];
            const facts = el("dl", { class: "facts", id: "batch-facts" });
            const add = (term, value) => facts.append(el("dt", {}, term), el("dd", {}, value));
            add("Status", batch.status);
            add("Batch Duration", duration(batch.batchDuration));
            add("Input data size", batch.inputSize + " records");
            add("Scheduling delay", duration(batch.schedulingDelay));
            add("Processing time", duration(batch.processingTime));
            add("Total delay", duration(batch.totalDelay));
            content.push(facts);

            content.push(el("h2", {}, "Output Operations (" + operations.length + ")"));
            content.push(table(["Id", "Name", "Description", "Started", "Duration", "Status"], operations.map((o) => [
              String(o.outputOpId), o.name, o.description, date(o.startTime), duration(o.duration),
              o.failureReason ? el("pre", { class: "error" }, "Failed: " + o.failureReason) : (o.endTime ? "Succeeded" : "Running")]),
              { id: "operations" }));

            content.push(el("h2", {}, "Input Streams (" + inputs.length + ")"));
            content.push(table(["Stream", "Records", "Rate limit", "Queued blocks", "PID (processing rate, error, historical error, dError)", "Description"],
              inputs.map((i) => [String(i.inputStreamId), String(i.numRecords), i.rateLimit === undefined ? "none" : rate(i.rateLimit),
                String(i.queuedBlocks), i.pidTerms ? [i.pidTerms.processingRate, i.pidTerms.error, i.pidTerms.historicalError, i.pidTerms.dError].map((v) => v.toFixed(1)).join(", ") : "-",
                (i.metadata && i.metadata.Description) || ""]),
              { id: "inputs" }));
            main.replaceChildren(...content);
          }

          poll(refresh);
        })();

        """#
}
