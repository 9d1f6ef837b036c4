() => {
  const el = document.activeElement;
  if (!el || el === document.body) return "nothing focused";
  const s = getComputedStyle(el);
  const ring = (s.outlineStyle !== "none" && parseFloat(s.outlineWidth) > 0) || s.boxShadow !== "none";
  return ring ? "" : "no visible focus on " + el.outerHTML.slice(0, 80);
}
