#!/usr/bin/env bash
# A user's journey through the gateway of `make run`: register, fill a basket, check out,
# pay, watch the order reach PAID, and read the views.
set -euo pipefail
GW=${GATEWAY_URL:-http://127.0.0.1:8080}
J() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
step() { printf '\n== %s\n' "$*"; }

step "register a gold customer"
CUSTOMER=$(curl -sf -X POST "$GW/api/customer" -H 'Content-Type: application/json' \
  -d '{"name": "Ada", "email": "ada@example.org", "level": "gold"}')
echo "$CUSTOMER"
CID=$(echo "$CUSTOMER" | J 'd["id"]')

step "fill the basket"
curl -sf -X POST "$GW/api/basket/$CID/items" -d '{"sku": "tea", "qty": 2, "price": 4.5}'; echo
curl -sf -X POST "$GW/api/basket/$CID/items" -d '{"sku": "cup", "qty": 1, "price": 11}'; echo
# The basket table follows its events within a commit interval: show it once it has both.
for _ in $(seq 100); do
  BASKET=$(curl -sf "$GW/api/basket/$CID")
  [ "$(echo "$BASKET" | J 'len(d["items"])')" = 2 ] && break
  sleep 0.1
done
echo "$BASKET"

step "check out (answers once the order is VALIDATED or FAILED)"
ORDER=$(curl -sf -X POST "$GW/api/basket/$CID/checkout?wait_for=state:VALIDATED,FAILED")
echo "$ORDER"
OID=$(echo "$ORDER" | J 'd["value"]["id"]')
TOTAL=$(echo "$ORDER" | J 'd["value"]["total"]')

step "pay $TOTAL (answers once the order is PAID)"
curl -sf -X POST "$GW/api/orders/$OID/payments?wait_for=state:PAID" -d "{\"amount\": $TOTAL}"; echo

step "the views"
curl -sf "$GW/apps/orders/tables/orders/keys/$OID"; echo
curl -sf "$GW/apps/customer/tables/customers-per-level/keys/gold"; echo
curl -sf "$GW/apps/orders/tables/orders?limit=5"; echo
