// primes.cpp — an ordinary C++ program: it knows nothing of weft.  It counts
// the primes below a limit with one std::thread per block of numbers (10,000
// threads by default), collecting partial counts in a queue guarded by a
// std::mutex and a std::condition_variable, and checks the total with
// std::async.  Built with any C++ compiler:
//
//   c++ -O2 -pthread primes.cpp -o primes
//   ./primes                 # 10,000 kernel threads
//   weft-run ./primes        # 10,000 green threads on a few workers
//
// Prints "primes below 2000000: 148933".
#include <cstdio>
#include <cstdlib>
#include <condition_variable>
#include <future>
#include <mutex>
#include <queue>
#include <thread>
#include <vector>

static bool is_prime(long n)
{
	if (n < 2)
		return false;
	for (long d = 2; d * d <= n; d++)
		if (n % d == 0)
			return false;
	return true;
}

static long count_range(long lo, long hi)
{
	long c = 0;
	for (long n = lo; n < hi; n++)
		c += is_prime(n);
	return c;
}

int main(int argc, char **argv)
{
	long limit = argc > 1 ? std::atol(argv[1]) : 2000000;
	long threads = argc > 2 ? std::atol(argv[2]) : 10000;
	if (limit < 2 || threads < 1) {
		std::fprintf(stderr, "usage: primes [LIMIT [THREADS]]\n");
		return 2;
	}
	long block = (limit + threads - 1) / threads;

	std::mutex m;
	std::condition_variable cv;
	std::queue<long> partial;
	std::vector<std::thread> pool;
	for (long lo = 0; lo < limit; lo += block) {
		long hi = lo + block < limit ? lo + block : limit;
		pool.emplace_back([&, lo, hi] {
			long c = count_range(lo, hi);
			std::lock_guard<std::mutex> g(m);
			partial.push(c);
			cv.notify_one();
		});
	}
	long total = 0;
	size_t received = 0;
	{
		std::unique_lock<std::mutex> lk(m);
		while (received < pool.size()) {
			cv.wait(lk, [&] { return !partial.empty(); });
			total += partial.front();
			partial.pop();
			received++;
		}
	}
	for (auto &t : pool)
		t.join();

	// The same count again, split in two halves with std::async.
	auto a = std::async(std::launch::async, count_range, 0L, limit / 2);
	auto b = std::async(std::launch::async, count_range, limit / 2, limit);
	if (a.get() + b.get() != total) {
		std::fprintf(stderr, "primes: the two counts differ\n");
		return 1;
	}
	std::printf("primes below %ld: %ld\n", limit, total);
	return 0;
}
