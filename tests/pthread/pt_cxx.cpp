// pt_cxx.cpp — C++ threads on weft through the pthread layer, unmodified:
// std::thread, std::mutex, std::recursive_mutex, std::shared_mutex,
// std::condition_variable (wait_for/wait_until), std::async, std::call_once
// (including a callable that throws), thread_local, a static initializer
// that starts a thread before main, and exceptions thrown and caught inside
// green threads while the timer preempts them.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <dirent.h>
#include <dlfcn.h>
#include <future>
#include <mutex>
#include <shared_mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "pt_stats.h"

static std::atomic<int> fails{0}, checks{0};
#define CHECK(c) do { ++checks; if (!(c)) { ++fails; \
	std::fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #c); } } while (0)

using stats = pt_stats;   // weft_stats_t (pt_stats.h)
static stats weft_stats()
{
	auto get = reinterpret_cast<int (*)(int, stats *)>(dlsym(RTLD_DEFAULT, "weft_stats_get"));
	stats s{};
	if (!get || get(-1, &s) != 0)
		s.alive = 0;
	return s;
}
static long alive() { return (long)weft_stats().alive; }
static int kernel_threads()
{
	int n = 0;
	if (DIR *d = opendir("/proc/self/task")) {
		while (dirent *e = readdir(d))
			n += e->d_name[0] != '.';
		closedir(d);
	}
	return n;
}

// A static initializer that runs a thread before main.
struct early_start {
	int value = 0;
	early_start() { std::thread([this] { value = 42; }).join(); }
} early;

static thread_local int tl_counter = 0;
static thread_local std::string tl_name("unset");

// The object that defines a symbol, as the program's own calls bind it.
static std::string object_of(const char *sym)
{
	Dl_info info;
	void *p = dlsym(RTLD_DEFAULT, sym);
	if (!p || !dladdr(p, &info) || !info.dli_fname)
		return "?";
	return info.dli_fname;
}

// A function-local static whose initializer sleeps (a green thread's
// sleep under the layer: it parks) while other threads reach it.
static std::atomic<int> static_inits{0};
static int slow_static()
{
	static int v = [] {
		static_inits++;
		std::this_thread::sleep_for(std::chrono::milliseconds(20));
		return 7;
	}();
	return v;
}

int main()
{
	CHECK(early.value == 42);

	// Many std::threads blocked at once: green threads.
	{
		std::mutex m;
		std::condition_variable cv;
		bool go = false;
		int waiting = 0;
		std::vector<std::thread> ts;
		for (int i = 0; i < 500; i++)
			ts.emplace_back([&] {
				std::unique_lock<std::mutex> lk(m);
				waiting++;
				cv.notify_all();
				cv.wait(lk, [&] { return go; });
			});
		{
			std::unique_lock<std::mutex> lk(m);
			cv.wait(lk, [&] { return waiting == 500; });
		}
		long a = alive();
		int k = kernel_threads();
		CHECK(a >= 500);
		CHECK(a > k);
		{
			std::lock_guard<std::mutex> lk(m);
			go = true;
		}
		cv.notify_all();
		for (auto &t : ts)
			t.join();
	}

	// Function-local statics: the guard functions the program calls are
	// weft's (libweft, ahead of libstdc++), so threads that reach a static
	// being initialized park instead of blocking their worker in a futex
	// (no worker had to be handed over).
	{
		std::string weft = object_of("weft_stats_get");
		CHECK(object_of("__cxa_guard_acquire") == weft);
		CHECK(object_of("__cxa_guard_release") == weft);
		unsigned long long handoffs = weft_stats().handoffs;
		std::vector<std::thread> ts;
		std::atomic<int> bad{0};
		for (int i = 0; i < 8; i++)
			ts.emplace_back([&] {
				if (slow_static() != 7)
					bad++;
			});
		for (auto &t : ts)
			t.join();
		CHECK(bad.load() == 0);
		CHECK(static_inits.load() == 1);
		CHECK(weft_stats().handoffs == handoffs);
	}

	// wait_for / wait_until time out (steady and system clocks).
	{
		std::mutex m;
		std::condition_variable cv;
		std::unique_lock<std::mutex> lk(m);
		CHECK(cv.wait_for(lk, std::chrono::milliseconds(2)) == std::cv_status::timeout);
		CHECK(cv.wait_until(lk, std::chrono::system_clock::now() + std::chrono::milliseconds(2)) ==
		      std::cv_status::timeout);
		std::timed_mutex tm;
		tm.lock();
		std::thread([&] { CHECK(!tm.try_lock_for(std::chrono::milliseconds(2))); }).join();
		tm.unlock();
	}

	// recursive_mutex and shared_mutex.
	{
		std::recursive_mutex rm;
		rm.lock();
		rm.lock();
		std::thread([&] { CHECK(!rm.try_lock()); }).join();
		rm.unlock();
		rm.unlock();
		std::shared_mutex sm;
		long shared_value = 0;
		std::atomic<int> readers_in{0}, max_readers{0};
		std::vector<std::thread> ts;
		for (int i = 0; i < 20; i++)
			ts.emplace_back([&, i] {
				for (int j = 0; j < 200; j++) {
					if ((i + j) % 5 == 0) {
						std::unique_lock<std::shared_mutex> w(sm);
						CHECK(readers_in.load() == 0);
						shared_value++;
					} else {
						std::shared_lock<std::shared_mutex> r(sm);
						int n = ++readers_in;
						int mx = max_readers.load();
						while (n > mx && !max_readers.compare_exchange_weak(mx, n))
							;
						std::this_thread::yield();
						--readers_in;
					}
				}
			});
		for (auto &t : ts)
			t.join();
		CHECK(shared_value == 20 * 200 / 5);
	}

	// std::async and futures.
	{
		std::vector<std::future<long>> fs;
		for (long i = 1; i <= 100; i++)
			fs.push_back(std::async(std::launch::async, [i] { return i * i; }));
		long sum = 0;
		for (auto &f : fs)
			sum += f.get();
		CHECK(sum == 338350);
		auto bad = std::async(std::launch::async, [] () -> int { throw std::runtime_error("boom"); });
		bool caught = false;
		try {
			bad.get();
		} catch (const std::runtime_error &e) {
			caught = std::string(e.what()) == "boom";
		}
		CHECK(caught);
	}

	// call_once: a throwing callable leaves the flag unset; the next runs.
	{
		std::once_flag flag;
		int runs = 0;
		try {
			std::call_once(flag, [&] { runs++; throw 1; });
		} catch (int) {
		}
		std::call_once(flag, [&] { runs++; });
		std::call_once(flag, [&] { runs++; });
		CHECK(runs == 2);
	}

	// thread_local: constructed lazily, usable within a thread.  (Per
	// worker under weft, not per green thread: docs/guide.md.)
	{
		std::thread([] {
			CHECK(tl_name == "unset");
			tl_counter = 5;
			CHECK(tl_counter == 5);
		}).join();
	}

	// Exceptions thrown and caught inside green threads under preemption:
	// CPU-bound threads in throw/catch loops share the workers, so ticks
	// land while they unwind.
	{
		std::atomic<long> caught{0};
		std::vector<std::thread> ts;
		unsigned long long preempted = weft_stats().preemptions;
		for (int i = 0; i < 16; i++)
			ts.emplace_back([&, i] {
				for (int j = 0; j < 2000; j++) {
					try {
						volatile long x = 0;
						for (int k = 0; k < 2000; k++)
							x += k;
						if ((i + j) % 2 == 0)
							throw std::runtime_error(std::to_string(j));
						throw j;
					} catch (const std::runtime_error &e) {
						if (std::stoi(e.what()) == j)
							caught++;
					} catch (int v) {
						// Park inside the handler: other threads
						// throw and catch on this worker meanwhile.
						// A rethrow must still find our exception.
						std::this_thread::yield();
						try {
							throw;
						} catch (int again) {
							if (v == j && again == j)
								caught++;
						}
					}
				}
			});
		for (auto &t : ts)
			t.join();
		CHECK(caught.load() == 16 * 2000);
		CHECK(weft_stats().preemptions > preempted);   // ticks did switch them
	}

	std::printf("pt_cxx: %d checks, %d failed\n", checks.load(), fails.load());
	return fails.load() ? 1 : 0;
}
