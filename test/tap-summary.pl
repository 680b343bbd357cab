# test/tap-summary.pl - runs TAP test files with TAP::Harness and prints the usual report,
# then one machine-readable line "tap-summary: <passed> <failed>" for scripts/test.sh.
# A file that dies, exits non-zero or misses its plan counts as one more failure.
use strict;
use warnings;
use TAP::Harness;

my ($perl_lib, @files) = @ARGV;
my $harness = TAP::Harness->new({ lib => [ $perl_lib, 't' ], verbosity => 0, timer => 1,
                                  merge => 1 });
my $agg = $harness->runtests(@files);
my $passed = scalar $agg->passed;
my $failed = scalar $agg->failed;
for my $file ($agg->descriptions) {
    my ($parser) = $agg->parsers($file);
    # a crash, a bad exit or a missed plan with no failed assertion to show for it
    $failed++ if !$parser->failed && ($parser->exit || $parser->parse_errors || !$parser->is_good_plan);
    # one line a failing file, which scripts/test.sh repeats at the end of the run
    my @bad = $parser->failed;
    my @why;
    push @why, 'tests ' . join(', ', @bad) if @bad;
    push @why, 'exit ' . $parser->exit if $parser->exit;
    push @why, 'bad plan (' . $parser->tests_run . ' run)' if !$parser->is_good_plan;
    push @why, 'parse errors' if $parser->parse_errors;
    print "tap-failed: $file: " . join('; ', @why) . "\n" if @why;
}
print "tap-summary: $passed $failed\n";
