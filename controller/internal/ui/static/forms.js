// Forms generated from stack variables: the browser checks what it can
// (types, ranges, patterns, required); the server's per-variable errors are
// shown next to their fields.

import { h } from "./dom.js";

export function variableForm(variables) {
  const inputs = {};
  const errors = {};
  const rows = variables.map((v) => {
    const id = `var-${v.name}`;
    let input;
    const common = { id, name: v.name, required: v.required && !v.hasDefault, "aria-describedby": `${id}-err` };
    switch (v.type) {
      case "password":
        input = h("input", { ...common, type: "password", autocomplete: "new-password" });
        break;
      case "number":
        input = h("input", { ...common, type: "number", step: "any", min: v.min, max: v.max, value: v.default });
        break;
      case "port":
        input = h("input", { ...common, type: "number", min: 1, max: 65535, step: 1, value: v.default });
        break;
      case "boolean":
        input = h("select", common, h("option", { value: "true" }, "true"), h("option", { value: "false" }, "false"));
        if (v.default) input.value = v.default;
        break;
      case "select":
        input = h("select", common, v.required && !v.default ? h("option", { value: "" }, "Choose…") : null,
          v.options.map((o) => h("option", { value: o }, o)));
        if (v.default) input.value = v.default;
        break;
      case "url":
        input = h("input", { ...common, type: "url", value: v.default });
        break;
      case "email":
        input = h("input", { ...common, type: "email", value: v.default });
        break;
      default:
        input = h("input", { ...common, type: "text", value: v.default, pattern: v.pattern || undefined });
    }
    inputs[v.name] = input;
    errors[v.name] = h("div", { class: "field-error", id: `${id}-err`, role: "alert" });
    const hint = [v.type, v.required ? "required" : "optional", v.description].filter(Boolean).join(" · ");
    return h("div", {}, h("label", { for: id }, v.label || v.name, " ", h("span", { class: "hint mono" }, `${v.name} — ${hint}`)), input, errors[v.name]);
  });
  return { node: h("div", {}, rows), inputs, errors };
}

// readForm returns the entered values; empty optional fields are left out so
// the server applies the defaults.
export function readForm(variables, form) {
  const out = {};
  for (const v of variables) {
    const el = form.inputs[v.name];
    if (!el) continue;
    if (el.value !== "") out[v.name] = el.value;
  }
  return out;
}

export function showFieldErrors(form, fields) {
  for (const el of Object.values(form.errors || {})) el.textContent = "";
  for (const f of fields || []) {
    const el = form.errors && form.errors[f.field];
    if (el) {
      el.textContent = f.message;
      form.inputs[f.field].setAttribute("aria-invalid", "true");
    }
  }
}
