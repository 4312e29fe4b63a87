"""kdemo's services: one package each, and `common` for what they share.

Imported before anything else of a service, so the one process-wide setting lives here.
"""

import os

# gRPC's own DNS resolver (c-ares) asks for a short name like `calc` under every search
# domain and finally as an absolute name, outside the cluster; where nothing answers that
# last question (a kind cluster without a way out) each new connection waits seconds for
# it. The system resolver, like every other program in the pod, stops at the first answer.
# gRPC reads this when it is imported, hence here.
os.environ.setdefault("GRPC_DNS_RESOLVER", "native")
