"""An order whose every piece of text from the channel is markup and script.

Each payload carries a marker (``ob-xss-…``) so a test can look for it: as text it must appear
(the page shows what the channel sent), as markup never — no element it would create, no
``on*=`` attribute, no dialog opened, no inline script the CSP had to refuse.
"""

from __future__ import annotations

from typing import Any

SCRIPT = "<script>window.obXss=1;alert('ob-xss-script')</script>"
IMG = "<img src=x onerror=alert('ob-xss-img')>"
SVG = "\"><svg onload=alert('ob-xss-svg')>"
PAYLOADS = (SCRIPT, IMG, SVG)
ALL = "".join(PAYLOADS)
#: the hostile order's number (its ``name`` in Shopify)
NUMBER = f"#9{SVG}"


def hostile_order(sku: str) -> dict[str, Any]:
    """REST-shaped overrides for ``ShopifyState.add_order``: markup in the name, note, tags,
    customer, addresses, a line's title and properties, and the note attributes (the raw payload
    carries all of it); its SKU is ``sku`` (unmapped: the order is held, so it is on every screen)."""
    address = {
        "first_name": SVG,
        "last_name": IMG,
        "name": f"{SVG} {IMG}",
        "address1": SCRIPT,
        "address2": IMG,
        "city": SVG,
        "province": "CA",
        "province_code": "CA",
        "zip": "94107",
        "country": "United States",
        "country_code": "US",
        "company": SCRIPT,
        "phone": "+1 415 555 0100",
    }
    return {
        "name": NUMBER,
        "note": ALL,
        "tags": [SCRIPT, IMG, SVG],
        "email": "xss@example.com",
        "customer": {"id": 7_700_001, "first_name": SCRIPT, "last_name": IMG, "email": "xss@example.com"},
        "shipping_address": address,
        "billing_address": address,
        "note_attributes": [{"name": SVG, "value": SCRIPT}],
        "line_items": [
            {
                "sku": sku,
                "quantity": 1,
                "price": "45.00",
                "title": IMG,
                "name": SCRIPT,
                "properties": [{"name": SVG, "value": IMG}],
            }
        ],
    }


#: run in a page: what injected markup would have created (every list must come back empty)
DOM_PROBE = """() => {
  const hits = {scripts: [], images: [], svgs: [], handlers: [], flag: window.obXss === 1};
  for (const s of document.querySelectorAll('script')) {
    const text = s.textContent || '';
    if (text.includes('ob-xss') || text.includes('obXss')) hits.scripts.push(s.outerHTML);
  }
  for (const i of document.querySelectorAll('img[src="x"]')) hits.images.push(i.outerHTML);
  for (const v of document.querySelectorAll('svg[onload]')) hits.svgs.push(v.outerHTML);
  for (const el of document.querySelectorAll('*')) {
    for (const a of el.attributes) {
      if (a.name.toLowerCase().startsWith('on')) hits.handlers.push(el.tagName + ' ' + a.name + '=' + a.value);
    }
  }
  return hits;
}"""
