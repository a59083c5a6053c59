// The reference for deployment_bench.sh: how fast this machine moves the
// same bytes over loopback TCP with nothing else in the way. One sender
// thread per receiver writes `mb` MB to each of `clients` receivers at once
// (what a broadcast of a model to every sampled client is); prints MB/s of
// all bytes delivered.
//
//   bench_loopback [mb=40] [clients=8] [repeats=3]
#include <Poco/Net/ServerSocket.h>
#include <Poco/Net/SocketAddress.h>
#include <Poco/Net/StreamSocket.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

int main(int argc, char** argv) {
  const std::size_t mb = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 40;
  const int clients = argc > 2 ? std::atoi(argv[2]) : 8;
  const int repeats = argc > 3 ? std::atoi(argv[3]) : 3;
  const std::string payload(mb << 20, 'w');
  Poco::Net::ServerSocket listener(Poco::Net::SocketAddress("127.0.0.1", 0), 64);
  const auto port = listener.address().port();
  double best = 0;
  for (int r = 0; r < repeats; ++r) {
    std::vector<std::thread> receivers;
    const auto start = std::chrono::steady_clock::now();
    for (int c = 0; c < clients; ++c) {
      receivers.emplace_back([&] {
        Poco::Net::StreamSocket s(Poco::Net::SocketAddress("127.0.0.1", port));
        std::vector<char> buf(1 << 16);
        std::size_t got = 0;
        while (got < payload.size()) {
          const int n = s.receiveBytes(buf.data(), static_cast<int>(buf.size()));
          if (n <= 0) break;
          got += static_cast<std::size_t>(n);
        }
      });
    }
    std::vector<std::thread> senders;
    for (int c = 0; c < clients; ++c) {
      Poco::Net::StreamSocket conn = listener.acceptConnection();
      senders.emplace_back([conn, &payload]() mutable {
        std::size_t sent = 0;
        while (sent < payload.size()) {
          sent += static_cast<std::size_t>(
              conn.sendBytes(payload.data() + sent, static_cast<int>(std::min<std::size_t>(payload.size() - sent, 1 << 20))));
        }
        conn.shutdownSend();
      });
    }
    for (auto& t : senders) t.join();
    for (auto& t : receivers) t.join();
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const double rate = static_cast<double>(mb) * clients / seconds;
    std::printf("loopback tcp: %zu MB to %d receivers in %.3f s = %.0f MB/s\n", mb, clients, seconds, rate);
    best = std::max(best, rate);
  }
  std::printf("loopback_mb_per_s %.1f\n", best);
}
