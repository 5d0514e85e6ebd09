# shellcheck shell=sh
# sizes.sh — sourced by run.sh and scaling.sh (not run): the sizes of a
# smoke run (--quick), per program.  They make every program finish in a
# few seconds; the figures they give are not for comparison.
quick_sizes() {
	case "$1" in
	switch) echo "--n=1M --pn=20K --thn=20K" ;;
	create) echo "--n=200K --pn=2K --thn=5K" ;;
	skynet) echo "--size=100000 --psize=1000" ;;
	idle) echo "--threads=10000 --pthreads=1000" ;;
	mutex) echo "--n=5M --per=20K" ;;
	cond) echo "--n=100K --pn=5K" ;;
	preempt) echo "--secs=1 --sleeps=100 --work=50M" ;;
	fib) echo "--n=25 --rounds=3" ;;
	trace) echo "--n=100K --pn=20K" ;;
	io) echo "--n=10K --conns=1000 --rounds=5" ;;
	httpd) echo "--d=2 --reps=1" ;;
	esac
}
