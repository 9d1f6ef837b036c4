() => {
  const problems = [];
  const visible = (el) => {
    const s = getComputedStyle(el), r = el.getBoundingClientRect();
    return s.visibility !== "hidden" && s.display !== "none" && r.width > 0 && r.height > 0;
  };
  const describe = (el) => el.outerHTML.slice(0, 120);
  const nameOf = (el) => {
    if (el.getAttribute("aria-label")) return el.getAttribute("aria-label");
    const by = el.getAttribute("aria-labelledby");
    if (by) return by.split(/\s+/).map((id) => document.getElementById(id)?.textContent || "").join(" ");
    if (el.labels && el.labels.length) return [...el.labels].map((l) => l.textContent).join(" ");
    if (el.title) return el.title;
    if (el.tagName === "INPUT" && ["submit", "button"].includes(el.type)) return el.value;
    return el.textContent;
  };
  if (!document.documentElement.lang) problems.push("<html> has no lang");
  if (!document.querySelector("h1")) problems.push("no <h1>");
  for (const el of document.querySelectorAll("input, select, textarea")) {
    if (el.type === "hidden" || !visible(el)) continue;
    if (!(nameOf(el) || "").trim()) problems.push("control without a label: " + describe(el));
  }
  for (const el of document.querySelectorAll("button, a[href], [role=button]")) {
    if (!visible(el)) continue;
    const img = el.querySelector("img[alt], svg[aria-label]");
    if (!(nameOf(el) || "").trim() && !img) problems.push("unnamed control: " + describe(el));
  }
  for (const el of document.querySelectorAll("img")) {
    if (!el.hasAttribute("alt")) problems.push("image without alt: " + describe(el));
  }
  for (const el of document.querySelectorAll("svg")) {
    if (!visible(el) || el.getAttribute("aria-hidden") === "true") continue;
    const named = el.getAttribute("aria-label") || el.querySelector("title") || el.getAttribute("aria-labelledby");
    if (!named) problems.push("svg without a text alternative: " + describe(el));
  }
  // WCAG 2 contrast of text against its effective background
  const rgb = (c) => (c.match(/[\d.]+/g) || []).map(Number);
  const lum = ([r, g, b]) => {
    const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  const background = (el) => {
    for (let e = el; e; e = e.parentElement) {
      const c = rgb(getComputedStyle(e).backgroundColor);
      if (c.length >= 3 && (c.length < 4 || c[3] > 0.5)) return c;
    }
    return [255, 255, 255];
  };
  const seen = new Set();
  for (const el of document.querySelectorAll("body *")) {
    if (!visible(el)) continue;
    const text = [...el.childNodes].filter((n) => n.nodeType === 3).map((n) => n.textContent).join("").trim();
    if (!text || el.closest("svg")) continue;
    const s = getComputedStyle(el);
    const fg = rgb(s.color), bg = background(el);
    const [a, b] = [lum(fg) + 0.05, lum(bg) + 0.05];
    const ratio = Math.max(a, b) / Math.min(a, b);
    const large = parseFloat(s.fontSize) >= 24 || (parseFloat(s.fontSize) >= 18.66 && parseInt(s.fontWeight) >= 700);
    const key = s.color + "/" + bg.join(",");
    if (ratio < (large ? 3 : 4.5) && !seen.has(key)) {
      seen.add(key);
      problems.push(`contrast ${ratio.toFixed(2)} for "${text.slice(0, 40)}" (${s.color} on rgb(${bg.join(",")}))`);
    }
  }
  return problems;
}
