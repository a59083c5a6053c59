// ClientApp — what runs at a site: it trains and evaluates on local data that
// never leaves it. Flower's Client: fit() gets the global model and the
// round's config, returns its updated model, how many examples it trained on,
// metrics, and a fingerprint of its data (never the data).
//
// A ClientApp is called by one thread at a time.
#pragma once

#include "fedtrack/core/strategy.h"

namespace fedtrack {

class ClientApp {
 public:
  virtual ~ClientApp() = default;
  virtual FitRes fit(const Parameters& global, const ConfigRecord& config) = 0;
  virtual EvaluateRes evaluate(const Parameters& global, const ConfigRecord& config) = 0;
};

}  // namespace fedtrack
