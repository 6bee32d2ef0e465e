// The console dashboard: plain JS modules over the JSON API (same origin, session cookie). No build step.
// Data is put in the page with textContent only; charts are Apache ECharts (vendored UMD, window.echarts).

const view = document.getElementById("view");
const statusBox = document.getElementById("status");
let me = null;
let charts = [];

// --- helpers ---------------------------------------------------------------------------------------------------

function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") el.className = v;
    else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

async function get(path) {
  const response = await fetch(path, { credentials: "same-origin", headers: { Accept: "application/json" } });
  if (response.status === 401) {
    window.location.assign("/signin");
    throw new Error("signed out");
  }
  const body = await response.json();
  if (!response.ok) throw new Error(body.error || `${path}: ${response.status}`);
  return body;
}

// Money stays a decimal string: grouped and rounded half-up to cents as text, never through a float.
export function formatAmount(text) {
  if (text === null || text === undefined) return "–";
  let negative = text.startsWith("-");
  let [whole, frac = ""] = (negative ? text.slice(1) : text).split(".");
  frac = (frac + "000").slice(0, 3);
  let cents = BigInt(whole + frac.slice(0, 2));
  if (Number(frac[2]) >= 5) cents += 1n;
  const digits = cents.toString().padStart(3, "0");
  whole = digits.slice(0, -2).replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  if (cents === 0n) negative = false;
  return `${negative ? "-" : ""}${whole}.${digits.slice(-2)}`;
}

function money(m) {
  return m ? `${m.currency} ${formatAmount(m.amount)}` : "–";
}

function percent(text) {
  if (text === null || text === undefined) return "–";
  return `${(Number(text) * 100).toFixed(1)} %`;
}

function duration(seconds) {
  if (seconds === null || seconds === undefined) return "–";
  if (seconds < 120) return `${seconds.toFixed(1)} s`;
  if (seconds < 7200) return `${(seconds / 60).toFixed(1)} min`;
  if (seconds < 172800) return `${(seconds / 3600).toFixed(1)} h`;
  return `${(seconds / 86400).toFixed(1)} days`;
}

function table(caption, columns, rows, { onRow, numeric = [] } = {}) {
  const head = h("tr", {}, columns.map((c) => h("th", { scope: "col", class: numeric.includes(c) ? "num" : null }, c)));
  const body = rows.map((r) => {
    const tr = h(
      "tr",
      onRow ? { class: "clickable", tabindex: "0" } : {},
      r.cells.map((cell, i) => h("td", { class: numeric.includes(columns[i]) ? "num" : null }, cell)),
    );
    if (onRow) {
      tr.addEventListener("click", () => onRow(r));
      tr.addEventListener("keydown", (e) => { if (e.key === "Enter") onRow(r); });
    }
    return tr;
  });
  if (!rows.length) body.push(h("tr", {}, h("td", { colspan: String(columns.length), class: "muted" }, "Nothing yet.")));
  return h("table", {}, h("caption", {}, caption), h("thead", {}, head), h("tbody", {}, body));
}

function chart(label, option, small = false) {
  const el = h("div", { class: small ? "chart small" : "chart", role: "img", "aria-label": label });
  requestAnimationFrame(() => {
    const c = window.echarts.init(el, null, { renderer: "canvas" });
    c.setOption({ aria: { enabled: true, label: { description: label } }, animation: false, ...option });
    charts.push(c);
  });
  return el;
}

function section(title, ...children) {
  return h("section", { "aria-label": title }, h("h2", {}, title), ...children);
}

function field(id, label, control) {
  control.id = id;
  return h("div", {}, h("label", { for: id }, label), control);
}

function select(name, options, value) {
  return h("select", { name }, options.map(([v, t]) => h("option", { value: v, selected: v === value }, t)));
}

function stateBadge(state) {
  return h("span", { class: `state ${state}` }, state.replaceAll("_", " "));
}

// --- pages -----------------------------------------------------------------------------------------------------

async function decisionFlow() {
  const page = h("div", {}, h("h1", {}, "Decision flow"));
  const funnel = await get("/v1/funnel");
  const labels = { recommended: "Recommended", approved: "Approved", purchased: "Purchased", savings_verified: "Savings verified" };
  const leads = [null, "recommended_to_approved", "approved_to_purchased", "purchased_to_verified"];
  const cards = funnel.stages.map((s, i) =>
    h(
      "div",
      { class: "card", "data-stage": s.stage },
      h("h3", {}, labels[s.stage]),
      h("p", { class: "stat", "data-count": String(s.count) }, String(s.count)),
      s.amounts.length
        ? s.amounts.map((m) => h("p", { "data-amount": m.amount, "data-currency": m.currency }, money(m)))
        : h("p", { class: "muted" }, "no money yet"),
      leads[i] ? h("p", { class: "lead" }, `median lead time from the previous stage: ${duration(funnel.lead_times_seconds[leads[i]])}`) : null,
    ),
  );
  page.append(
    section(
      "Funnel",
      h("div", { class: "funnel-stages" }, cards),
      chart("Funnel of decisions: recommended, approved, purchased, savings verified", {
        tooltip: { trigger: "item" },
        series: [{
          type: "funnel", sort: "none", minSize: "8%", left: "10%", width: "80%",
          label: { show: true, position: "inside", color: "#fff", formatter: "{b}: {c}" },
          data: funnel.stages.map((s) => ({ name: labels[s.stage], value: s.count })),
        }],
        color: ["#0b5394", "#1d6fb8", "#2f7d4f", "#1b6e3a"],
      }, true),
      h("p", { class: "muted" }, `Pending ${funnel.outcomes.pending} · rejected ${funnel.outcomes.rejected} · expired ${funnel.outcomes.expired} · purchase failed ${funnel.outcomes.failed} · savings shortfall ${funnel.outcomes.shortfall}`),
      h(
        "p",
        { class: "muted", "data-cost-changes": String(funnel.cost_changes.count) },
        `Cost changes (open anomalies, not savings): ${funnel.cost_changes.count}`,
        ...funnel.cost_changes.amounts.map((m) => ` · ${money(m)} a month`),
      ),
    ),
  );
  const detail = h("div", { class: "detail", "aria-live": "polite" });
  const tableBox = h("div");
  const state = select("state", [["", "any"], ...["proposed", "pending_approval", "approved", "rejected", "expired", "purchase_requested", "purchased", "failed", "savings_verified", "savings_shortfall"].map((s) => [s, s.replaceAll("_", " ")])], "");
  const kind = select("kind", [["", "any"], ["commitment_plan", "commitment plan"], ["rightsizing", "rightsizing"], ["idle", "idle"], ["anomaly", "anomaly"]], "");
  const team = h("input", { name: "team", type: "text", placeholder: "e.g. checkout" });
  let cursor = null;
  async function load(reset) {
    if (reset) { cursor = null; tableBox.replaceChildren(); }
    const q = new URLSearchParams({ limit: "25" });
    if (state.value) q.set("state", state.value);
    if (kind.value) q.set("kind", kind.value);
    if (team.value.trim()) q.set("team", team.value.trim());
    if (cursor) q.set("cursor", cursor);
    const data = await get(`/v1/decisions?${q}`);
    cursor = data.next_cursor;
    tableBox.append(
      table(
        "Decisions (select one for its history)",
        ["Title", "Kind", "Team", "State", "Estimated / month", "Realized", "Updated"],
        data.items.map((d) => ({
          id: d.decision_id,
          cells: [d.title || d.decision_id, d.kind || "–", d.owner_team || "–", stateBadge(d.state), money(d.estimated_monthly_savings), money(d.realized_savings), new Date(d.updated_at).toLocaleString()],
        })),
        { onRow: (r) => openDecision(r.id, detail), numeric: ["Estimated / month", "Realized"] },
      ),
    );
    if (cursor) tableBox.append(h("button", { type: "button", onclick: () => load(false) }, "More decisions"));
  }
  const filters = h(
    "form",
    { class: "filters", onsubmit: (e) => { e.preventDefault(); load(true); } },
    field("f-state", "State", state),
    field("f-kind", "Kind", kind),
    field("f-team", "Team", team),
    h("button", { type: "submit" }, "Filter"),
  );
  page.append(section("Decisions", filters, tableBox, detail));
  await load(true);
  return page;
}

async function openDecision(id, box) {
  const d = await get(`/v1/decisions/${encodeURIComponent(id)}`);
  box.replaceChildren(
    h(
      "div",
      { class: "card", id: "decision-detail" },
      h("h3", {}, d.title || d.decision_id),
      h("p", {}, stateBadge(d.state), ` ${d.kind || ""} · team ${d.owner_team || "–"} · proposed by ${d.proposer || "–"}`),
      h("p", {}, `Estimated ${money(d.estimated_monthly_savings)} a month · commitment ${money(d.monthly_commitment)} a month · realized ${money(d.realized_savings)}`),
      d.recommendation ? h("p", { class: "muted" }, `From recommendation: ${d.recommendation.title} (${d.recommendation.status})`) : null,
      h("h3", {}, "History and audit trail"),
      h(
        "ol",
        { class: "timeline" },
        d.history.map((e) => h("li", {}, h("strong", {}, new Date(e.at).toLocaleString()), " ", stateBadge(e.state || "event"), " ", e.summary, e.actor ? h("span", { class: "muted" }, ` (by ${e.actor})`) : null)),
      ),
    ),
  );
}

async function pipelineHealth() {
  const p = await get("/v1/pipeline");
  const topics = p.topics || [];
  return h(
    "div",
    {},
    h("h1", {}, "Pipeline health"),
    p.error ? h("p", { class: "error" }, `Kafka could not be sampled: ${p.error}`) : null,
    section(
      "Events per second",
      chart("Events per second per topic", {
        grid: { left: 200, right: 20 },
        xAxis: { type: "value", name: "events/s" },
        yAxis: { type: "category", data: topics.map((t) => t.topic) },
        tooltip: {},
        series: [{ type: "bar", data: topics.map((t) => t.events_per_second), itemStyle: { color: "#0b5394" } }],
      }, true),
      table(
        `Topics (rates over the last ${p.window_seconds ?? 0} s)`,
        ["Topic", "Owner", "Events/s", "Events", "Dead letters"],
        topics.map((t) => ({ cells: [t.topic, t.owner, t.events_per_second.toFixed(2), String(t.events), String(t.dead_letters)] })),
        { numeric: ["Events/s", "Events", "Dead letters"] },
      ),
    ),
    section(
      "Consumer lag",
      table(
        "Lag per consumer group (end offsets less committed offsets)",
        ["Group", "Lag", "Per topic"],
        (p.groups || []).map((g) => ({ cells: [g.group, String(g.lag), g.topics.map((t) => `${t.topic}: ${t.lag}`).join(", ")] })),
        { numeric: ["Lag"] },
      ),
    ),
    section(
      "Ingest runs",
      table(
        "Latest billing files",
        ["File", "Status", "Rows", "Batches", "Finished", "Errors"],
        p.ingest_runs.map((r) => ({ cells: [r.file_name || r.ingest_id, stateBadge(r.status), r.row_count ?? "–", r.batch_count ?? "–", r.finished_at ? new Date(r.finished_at).toLocaleString() : "–", r.errors.map((e) => `${e.rule}: ${e.hint}`).join("; ")] })),
        { numeric: ["Rows", "Batches"] },
      ),
    ),
    section(
      "Consumed by the console",
      table("Events read, by type", ["Topic", "Type", "Events", "Last"], p.consumed.map((c) => ({ cells: [c.topic, c.type, String(c.events), new Date(c.last_at).toLocaleString()] })), { numeric: ["Events"] }),
    ),
  );
}

async function sharedKpis() {
  const k = await get("/v1/kpis");
  const totals = k.commitments.totals[0];
  const role = me.role;
  const cards = h(
    "div",
    { class: "grid" },
    h("div", { class: "card" }, h("h3", {}, "Effective savings rate"), h("p", { class: "stat" }, percent(totals?.effective_savings_rate)), h("p", { class: "muted" }, "practitioner, finance")),
    h("div", { class: "card" }, h("h3", {}, "Commitment coverage"), h("p", { class: "stat" }, percent(totals?.coverage)), h("p", { class: "muted" }, "practitioner, finance")),
    h("div", { class: "card" }, h("h3", {}, "Commitment utilization"), h("p", { class: "stat" }, percent(k.commitments.utilization)), h("p", { class: "muted" }, "practitioner, finance")),
    ...k.savings.map((s) => h("div", { class: "card" }, h("h3", {}, "Realized against estimated savings"), h("p", { class: "stat" }, `${s.currency} ${formatAmount(s.realized)}`), h("p", { class: "muted" }, `of ${s.currency} ${formatAmount(s.estimated)} estimated, ${s.decisions} decisions verified`))),
  );
  const coverage = k.coverage.filter((c) => c.scope_kind === "team");
  return h(
    "div",
    {},
    h("h1", {}, `Shared KPIs · ${k.period || "no data yet"}`),
    h("p", { class: "muted" }, `Shown for the ${role} persona.`),
    section("Commitments and savings", cards),
    section(
      "Tag coverage and allocation coverage (engineering, finance)",
      chart("Tag coverage and allocation coverage per team", {
        legend: { top: 0 },
        tooltip: { trigger: "axis" },
        xAxis: { type: "category", data: coverage.map((c) => c.scope) },
        yAxis: { type: "value", max: 100, name: "%" },
        series: [
          { name: "tagged", type: "bar", data: coverage.map((c) => Number(c.tagged_share) * 100), itemStyle: { color: "#0b5394" } },
          { name: "allocated", type: "bar", data: coverage.map((c) => Number(c.allocated_share) * 100), itemStyle: { color: "#2f7d4f" } },
        ],
      }, true),
      table("Coverage per scope", ["Scope", "Total", "Tagged", "Allocated"], k.coverage.map((c) => ({ cells: [`${c.scope_kind} ${c.scope}`, money(c.total), percent(c.tagged_share), percent(c.allocated_share)] })), { numeric: ["Total", "Tagged", "Allocated"] }),
    ),
    section(
      "Budget against forecast (finance)",
      chart("Budget, actual and forecast per budget scope", {
        legend: { top: 0 },
        tooltip: { trigger: "axis" },
        xAxis: { type: "category", data: k.budgets.map((b) => b.scope) },
        yAxis: { type: "value" },
        series: [
          { name: "budget", type: "bar", data: k.budgets.map((b) => Number(b.budget)), itemStyle: { color: "#6b7785" } },
          { name: "actual", type: "bar", data: k.budgets.map((b) => Number(b.actual)), itemStyle: { color: "#0b5394" } },
          { name: "forecast", type: "bar", data: k.budgets.map((b) => Number(b.forecast)), itemStyle: { color: "#a4161a" } },
        ],
      }, true),
      table("Budgets", ["Scope", "Budget", "Actual", "Forecast", "Alert"], k.budgets.map((b) => ({ cells: [`${b.scope_kind} ${b.scope}`, `${b.currency} ${formatAmount(b.budget)}`, `${b.currency} ${formatAmount(b.actual)}`, `${b.currency} ${formatAmount(b.forecast)}`, `${percent(b.threshold)} on ${b.basis}`] })), { numeric: ["Budget", "Actual", "Forecast"] }),
    ),
    section(
      "Unit costs (business)",
      table("Unit cost per product and metric", ["Product", "Metric", "Units", "Cost", "Unit cost"], k.unit_costs.map((u) => ({ cells: [u.product, u.metric, u.units, money(u.cost), `${u.unit_cost.currency} ${u.unit_cost.amount}`] })), { numeric: ["Units", "Cost", "Unit cost"] }),
    ),
    section(
      "Commitment pools",
      table("ESR, coverage and utilization per pool", ["Pool", "Provider", "On-demand equivalent", "Savings", "ESR", "Coverage", "Utilization"], k.commitments.pools.map((c) => ({ cells: [c.pool, c.provider, `${c.currency} ${formatAmount(c.on_demand_equivalent)}`, `${c.currency} ${formatAmount(c.savings)}`, percent(c.effective_savings_rate), percent(c.coverage), percent(c.utilization)] })), { numeric: ["On-demand equivalent", "Savings", "ESR", "Coverage", "Utilization"] }),
    ),
  );
}

const DIMS = [["team", "team"], ["cost_center", "cost center"], ["service", "service"], ["provider", "provider"], ["billing_account", "billing account"], ["product", "product"]];

async function costExplorer() {
  const by = select("group_by", DIMS, "cost_center");
  const from = h("input", { name: "period_from", type: "month" });
  const to = h("input", { name: "period_to", type: "month" });
  const only = h("input", { name: "only", type: "text", placeholder: "value of the grouped dimension" });
  const out = h("div");
  async function load() {
    const base = new URLSearchParams();
    if (from.value) base.set("period_from", from.value);
    if (to.value) base.set("period_to", to.value);
    if (only.value.trim()) base.set(by.value, only.value.trim());
    const totals = await get(`/v1/costs?${new URLSearchParams({ ...Object.fromEntries(base), group_by: by.value, sort: "cost", limit: "20" })}`);
    const monthly = await get(`/v1/costs?${new URLSearchParams({ ...Object.fromEntries(base), group_by: `period,${by.value}`, limit: "1000" })}`);
    const label = DIMS.find(([d]) => d === by.value)[1];
    const periods = [...new Set(monthly.items.map((r) => r.period))].sort();
    const top = totals.items.slice(0, 8).map((r) => r[by.value]);
    out.replaceChildren(
      h(
        "div",
        { class: "grid" },
        h("div", { class: "card" }, chart(`EffectiveCost by ${label}, largest first`, {
          grid: { left: 140, right: 20 },
          tooltip: {},
          xAxis: { type: "value" },
          yAxis: { type: "category", inverse: true, data: totals.items.map((r) => r[by.value]) },
          series: [{ type: "bar", data: totals.items.map((r) => Number(r.effective_cost)), itemStyle: { color: "#0b5394" } }],
        })),
        h("div", { class: "card" }, chart(`EffectiveCost by period and ${label}`, {
          legend: { top: 0, type: "scroll" },
          tooltip: { trigger: "axis" },
          xAxis: { type: "category", data: periods },
          yAxis: { type: "value" },
          series: top.map((name) => ({
            name, type: "bar", stack: "cost",
            data: periods.map((p) => monthly.items.filter((r) => r.period === p && r[by.value] === name).reduce((s, r) => s + Number(r.effective_cost), 0)),
          })),
        })),
      ),
      table(`Cost by ${label} (exact, largest first)`, [label, "Currency", "BilledCost", "EffectiveCost", "Lines"], totals.items.map((r) => ({ cells: [r[by.value], r.currency, formatAmount(r.billed_cost), formatAmount(r.effective_cost), String(r.line_count)] })), { numeric: ["BilledCost", "EffectiveCost", "Lines"] }),
    );
  }
  const form = h(
    "form",
    { class: "filters", onsubmit: (e) => { e.preventDefault(); load(); } },
    field("c-by", "Group by", by),
    field("c-from", "From period", from),
    field("c-to", "To period", to),
    field("c-only", "Only", only),
    h("button", { type: "submit" }, "Show"),
  );
  await load();
  return h("div", {}, h("h1", {}, "Cost explorer"), section("Filters", form), section("Cost", out));
}

async function landing() {
  const role = me.role;
  const page = h("div", {}, h("h1", {}, `My view · ${role}`));
  if (role === "engineering") {
    const teams = me.teams.join(", ") || "no team";
    const byService = await get("/v1/costs?group_by=team,service&sort=cost&limit=10");
    const anomalies = await get("/v1/recommendations?status=open&kind=anomaly&limit=10");
    const rightsizing = await get("/v1/recommendations?status=open&kind=rightsizing,idle&limit=10");
    page.append(
      h("p", { class: "muted" }, `Costs and advice for your teams: ${teams}.`),
      section("My teams' costs", table("Largest services of my teams", ["Team", "Service", "Currency", "EffectiveCost"], byService.items.map((r) => ({ cells: [r.team, r.service, r.currency, formatAmount(r.effective_cost)] })), { numeric: ["EffectiveCost"] })),
      section("Anomalies", recTable(anomalies.items)),
      section("Rightsizing and idle resources", recTable(rightsizing.items)),
    );
  } else if (role === "business") {
    const k = await get("/v1/kpis");
    const costsByProduct = await get("/v1/costs?group_by=product,period&limit=100");
    page.append(
      section("Unit costs", table("Unit cost per product", ["Product", "Metric", "Units", "Unit cost"], k.unit_costs.map((u) => ({ cells: [u.product, u.metric, u.units, `${u.unit_cost.currency} ${u.unit_cost.amount}`] })), { numeric: ["Units", "Unit cost"] })),
      section("My products' costs", table("Cost per product and period", ["Product", "Period", "Currency", "EffectiveCost"], costsByProduct.items.map((r) => ({ cells: [r.product, r.period, r.currency, formatAmount(r.effective_cost)] })), { numeric: ["EffectiveCost"] })),
    );
  } else if (role === "finance") {
    const k = await get("/v1/kpis");
    const chargeback = await get("/v1/costs?group_by=cost_center,period&limit=100");
    const journals = await get("/v1/journals");
    const commitments = await get("/v1/decisions?kind=commitment_plan&limit=10");
    page.append(
      section("Budgets", table("Budget against forecast", ["Scope", "Budget", "Actual", "Forecast"], k.budgets.map((b) => ({ cells: [`${b.scope_kind} ${b.scope}`, `${b.currency} ${formatAmount(b.budget)}`, `${b.currency} ${formatAmount(b.actual)}`, `${b.currency} ${formatAmount(b.forecast)}`] })), { numeric: ["Budget", "Actual", "Forecast"] })),
      section("Chargeback", table("Cost per cost center and period", ["Cost center", "Period", "Currency", "EffectiveCost"], chargeback.items.map((r) => ({ cells: [r.cost_center, r.period, r.currency, formatAmount(r.effective_cost)] })), { numeric: ["EffectiveCost"] })),
      section("Commitments", table("Commitment decisions", ["Title", "State", "Commitment / month", "Estimated savings / month"], commitments.items.map((d) => ({ cells: [d.title || d.decision_id, stateBadge(d.state), money(d.monthly_commitment), money(d.estimated_monthly_savings)] })), { numeric: ["Commitment / month", "Estimated savings / month"] })),
      section("Journals", table("Journals exported at close", ["Period", "Entity", "Lines", "Debits", "Closed by"], journals.map((j) => ({ cells: [j.period, j.entity, String(j.line_count), j.debits.map(money).join(", "), j.closed_by] })), { numeric: ["Lines"] })),
    );
  } else {
    const funnel = await get("/v1/funnel");
    const k = await get("/v1/kpis");
    const open = await get("/v1/recommendations?status=open&limit=10");
    page.append(
      h("p", { class: "muted" }, "Everything: the flow, the KPIs and the open advice. Each page has the detail."),
      section("Decision flow", h("div", { class: "grid" }, funnel.stages.map((s) => h("div", { class: "card" }, h("h3", {}, s.stage.replaceAll("_", " ")), h("p", { class: "stat" }, String(s.count)), h("p", {}, s.amounts.map(money).join(", ") || "–"))))),
      section("KPIs", h("div", { class: "grid" }, h("div", { class: "card" }, h("h3", {}, "Effective savings rate"), h("p", { class: "stat" }, percent(k.commitments.totals[0]?.effective_savings_rate))), h("div", { class: "card" }, h("h3", {}, "Budgets alerting"), h("p", { class: "stat" }, String(k.budgets.length))))),
      section("Open recommendations", recTable(open.items)),
    );
  }
  return page;
}

function recTable(items) {
  return table("Recommendations, largest savings first", ["Title", "Kind", "Team", "Estimated / month", "Expires"], items.map((r) => ({ cells: [r.title, r.kind, r.owner_team, money(r.estimated_monthly_savings), r.expires_at ? new Date(r.expires_at).toLocaleDateString() : "–"] })), { numeric: ["Estimated / month"] });
}

// --- routing ---------------------------------------------------------------------------------------------------

const PAGES = { home: landing, flow: decisionFlow, pipeline: pipelineHealth, kpis: sharedKpis, costs: costExplorer };

async function show() {
  const name = (window.location.hash || "#home").slice(1);
  const render = PAGES[name] || landing;
  for (const a of document.querySelectorAll("nav a")) {
    if (a.dataset.page === name) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  charts.forEach((c) => c.dispose());
  charts = [];
  statusBox.textContent = "Loading…";
  document.body.dataset.ready = "false";
  try {
    view.replaceChildren(await render());
    statusBox.textContent = "";
  } catch (error) {
    statusBox.textContent = `Could not load this page: ${error.message}`;
  }
  requestAnimationFrame(() => { document.body.dataset.ready = "true"; document.body.dataset.page = name; });
}

async function start() {
  me = await get("/v1/me");
  document.getElementById("who").textContent = `${me.name} · ${me.role}${me.teams.length ? ` · ${me.teams.join(", ")}` : ""}`;
  if (me.role !== "practitioner" && me.role !== "admin" && me.role !== "finance" && me.role !== "automation") {
    document.querySelector('nav a[data-page="pipeline"]').parentElement.remove();
  }
  window.addEventListener("hashchange", show);
  window.addEventListener("resize", () => charts.forEach((c) => c.resize()));
  await show();
}

start();
