# parse_tweet's two ways of reading a message give the same row.  A well-formed message is
# read by the fast scan of src/parse.c, any other by json-c; tweetlake.parse_fast_path = off
# sends every message the json-c way.  On one server, ~104k messages are parsed in both
# modes: 50,000 generated tweets, 6,000 re-serialized ones (escapes, surrogate pairs,
# reordered keys, whitespace, numbers as 9.0 and exponents: all must stay on the fast path
# and give the row of their plain form) and 40,000 mutated ones (byte flips, truncations,
# odd numbers, duplicate and escaped keys, type swaps, deep nesting, long arrays, large
# messages), and known-bad messages with their exact reasons.  Every row must be the same
# in both modes, and tweet_id_of must agree with it.
#
# How the test knows both ways were really taken: parse.c counts, in two backend-local
# integers, the messages each way read (two increments, nothing measurable on the fast
# path), and returns them from a C function the extension does not declare; the test
# declares it (superuser) as parse_test.path_counts() and reads it before and after each
# kind of message in the same session.  Without the fast path no message may take it;
# with it, the generated and re-serialized ones must all take it, and the mutated ones
# must go both ways.  Generation is deterministic (srand and fixed generator seeds).
use strict;
use warnings;
use utf8;
use Encode ();
use PostgreSQL::Test::Utils;
use Test::More;
use lib 't';
use PipelineTest;

my $N_GENERATED = 50_000;
my $N_TEMPLATES = 2_000;
my $N_VARIANTS = 6_000;
my $N_MUTATED = 40_000;

my $node = tweetlake_node('parse_paths', 'tweetlake.autostart' => 'off');
srand(20261202);

# The templates of the variants and mutations: generated tweets as Perl character strings.
my @templates = map { Encode::decode('UTF-8', $_, Encode::FB_CROAK) }
  generated_tweets($node, $N_TEMPLATES, 4302);
is(scalar @templates, $N_TEMPLATES, "$N_TEMPLATES templates");
sub pick { return $_[ int(rand(@_)) ]; }

# --- re-serialized messages ---------------------------------------------------------------
# A JSON reader just good enough for the generator's output (and strict about it): a tree of
# [o => [[key, value], ...]], [a => [values]], [s => string], [n => number text], [l => literal].
sub json_tree
{
	my ($s) = @_;
	my $pos = 0;
	my $value;
	my $str = sub {
		$s =~ /\G"((?:[^"\\]|\\.)*)"/gc or die "string expected at $pos: $s";
		my $raw = $1;
		my %esc = ('"' => '"', '\\' => '\\', '/' => '/', b => "\b", f => "\f", n => "\n",
			r => "\r", t => "\t");
		$raw =~ s{\\(?:u([dD][89abAB][0-9a-fA-F]{2})\\u([dD][c-fC-F][0-9a-fA-F]{2})|u([0-9a-fA-F]{4})|(.))}
		         {defined $1 ? chr(0x10000 + ((hex($1) - 0xD800) << 10) + (hex($2) - 0xDC00))
		          : defined $3 ? chr(hex($3)) : $esc{$4} // die "escape \\$4"}ge;
		return $raw;
	};
	$value = sub {
		if ($s =~ /\G\{/gc)
		{
			my @members;
			return [ o => \@members ] if $s =~ /\G\}/gc;
			do
			{
				my $k = $str->();
				$s =~ /\G:/gc or die "colon expected: $s";
				push @members, [ $k, $value->() ];
			} while ($s =~ /\G,/gc);
			$s =~ /\G\}/gc or die "} expected: $s";
			return [ o => \@members ];
		}
		if ($s =~ /\G\[/gc)
		{
			my @elems;
			return [ a => \@elems ] if $s =~ /\G\]/gc;
			do { push @elems, $value->(); } while ($s =~ /\G,/gc);
			$s =~ /\G\]/gc or die "] expected: $s";
			return [ a => \@elems ];
		}
		return [ s => $str->() ] if $s =~ /\G(?=")/gc;
		return [ n => $1 ] if $s =~ /\G(-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?)/gc;
		return [ l => $1 ] if $s =~ /\G(true|false|null)/gc;
		die "value expected: $s";
	};
	my $tree = $value->();
	die "trailing data: $s" unless pos($s) == length($s);
	return $tree;
}

# The same decimal number spelled another way: 12 as 12.0, 1.2e1, 120E-1; 0.782 as 782e-3.
sub respell
{
	my ($num) = @_;
	my ($sign, $int, $frac, $exp) = $num =~ /^(-?)([0-9]+)(?:\.([0-9]+))?(?:[eE]([-+]?[0-9]+))?$/
	  or die "number $num";
	$frac //= '';
	$exp //= 0;
	my $digits = "$int$frac";        # value = digits * 10^(exp - length(frac))
	$exp -= length($frac);
	$digits =~ s/^0+(?=.)//;
	return $num if length($digits) > 15;    # an integer beyond 2^53 must stay one
	my $form = int(rand(5));
	my $e = pick('e', 'E');
	return "$sign$digits$e" . ($exp >= 0 && rand() < 0.5 ? '+' : '') . $exp if $form == 0;
	if ($form == 1)                   # d.ddd e x
	{
		my $x = $exp + length($digits) - 1;
		return $sign . substr($digits, 0, 1) . '.' . (length($digits) > 1 ? substr($digits, 1) : '0')
		  . $e . $x;
	}
	if ($form == 2)                   # plain, with a trailing zero after the point
	{
		my $p = $digits . ('0' x ($exp > 0 ? $exp : 0));
		my $scale = $exp < 0 ? -$exp : 0;
		$p = ('0' x ($scale + 1 - length($p))) . $p if length($p) <= $scale;
		return $sign . ($scale ? substr($p, 0, length($p) - $scale) . '.' . substr($p, -$scale) . '0'
			  : "$p.0");
	}
	return "$sign${digits}0$e" . ($exp - 1) if $form == 3 && $digits ne '0';
	return $num;
}

my @WS = (' ', "\t", "\n", "\r");
sub ws { return rand() < 0.3 ? join('', map { pick(@WS) } 1 .. 1 + int(rand(3))) : ''; }
my %SHORT = ("\b" => '\b', "\f" => '\f', "\n" => '\n', "\r" => '\r', "\t" => '\t', '"' => '\"',
	'\\' => '\\\\');

# A character as a \u escape (a surrogate pair above U+FFFF), in either case.
sub u_escape
{
	my $o = ord($_[0]);
	my $u = $o < 0x10000 ? sprintf('\\u%04x', $o)
	  : sprintf('\\u%04x\\u%04x', 0xD800 + (($o - 0x10000) >> 10), 0xDC00 + (($o - 0x10000) & 0x3FF));
	return rand() < 0.5 ? $u : uc($u) =~ s/\\U/\\u/gr;
}

# A JSON string: plain (only what must be escaped, as short escapes), or fancy: maybe \/,
# some characters or all of them as \u escapes.
sub json_string
{
	my ($str, $fancy) = @_;
	my $how = $fancy ? int(rand(4)) : 0;
	if ($how <= 1)
	{
		$str =~ s{(["\\\x00-\x1f])}{$SHORT{$1} // sprintf('\\u%04x', ord($1))}ge;
		$str =~ s{/}{\\/}g if $how == 1;
	}
	elsif ($how == 2)
	{
		$str =~ s{(["\\\x00-\x1f])|(.)}{defined $1 ? $SHORT{$1} // u_escape($1) : rand() < 0.3 ? u_escape($2) : $2}gse;
	}
	else
	{
		$str =~ s{(.)}{exists $SHORT{$1} && rand() < 0.5 ? $SHORT{$1} : u_escape($1)}gse;
	}
	return qq("$str");
}

# The tree as JSON: compact, or (fancy) with whitespace, escapes, shuffled keys and numbers
# spelled another way (not user ids, whose integer form is an id and 12.0 is not).
sub json_text
{
	my ($v, $fancy, $key) = @_;
	my ($t, $x) = @$v;
	return json_string($x, $fancy) if $t eq 's';
	my $ws = $fancy ? \&ws : sub { '' };
	if ($t eq 'o')
	{
		my @m = @$x;
		if ($fancy && rand() < 0.3)
		{
			for (my $i = $#m; $i > 0; $i--)
			{
				my $j = int(rand($i + 1));
				@m[ $i, $j ] = @m[ $j, $i ];
			}
		}
		return '{' . $ws->() . join(',' . $ws->(),
			map { json_string($_->[0], $fancy) . $ws->() . ':' . $ws->() . json_text($_->[1], $fancy, $_->[0]) . $ws->() } @m)
		  . $ws->() . '}';
	}
	return '[' . $ws->() . join(',' . $ws->(), map { json_text($_, $fancy) . $ws->() } @$x) . $ws->() . ']'
	  if $t eq 'a';
	if ($t eq 'n' && $fancy && ($key // '') ne 'user_id' && rand() < 0.5)
	{
		return respell($x);
	}
	return $x;
}

# Each variant: a template, its text maybe with a character added (plain form), and the
# same tree written the fancy way.
my (@plain, @fancy);
my @trees = map { json_tree($_) } @templates;
for (1 .. $N_VARIANTS)
{
	my $tree = pick(@trees);
	if (rand() < 0.3)
	{
		my $add = pick("\t", "\n", "é", "\x{1F600}", "\x{2028}", '"', '\\', '/', "\x01", "\x7f", ' #AI');
		$tree = [ o => [ map { $_->[0] eq 'text' ? [ text => [ s => $_->[1][1] . $add ] ] : $_ } @{ $tree->[1] } ] ];
	}
	push @plain, json_text($tree, 0);
	my $ws = rand() < 0.2 ? pick(@WS) : '';
	push @fancy, $ws . json_text($tree, 1) . $ws;
}

# --- mutated messages ------------------------------------------------------------------------
# Mutated as UTF-8 bytes (match positions in Perl's character strings cost a scan each);
# what is no longer UTF-8 at the end is dropped, as the consumer never passes it on.
sub u8 { return map { Encode::encode('UTF-8', $_) } @_; }
my @NUMS = ('0', '-0', '00', '-00', '0123', '-012', '1', '-1', '12.0', '12.5', '-12.0', '0.0', '-0.0',
	'1e5', '1E5', '1e+5', '1e-5', '1.e5', '.5', '-.5', '1.5e', '1.5.5', '+1', '9223372036854775807',
	'9223372036854775808', '-9223372036854775808', '-9223372036854775809', '18446744073709551615',
	'18446744073709551616', '99999999999999999999999', '123456789012345678', '1234567890123456789',
	'-123456789012345678', '2147483647', '2147483648', '-2147483648', '1e400', '-1e400', '1e-400',
	'4.9e-324', '2.2e-308', '2.2250738585072014e-308', '2.2250738585072011e-308', '1e15',
	'1.0000000000000002e15', '-1e15', '1e16', '0.1', '0.30000000000000004', '1.7976931348623157e308',
	'NaN', 'Infinity', '-Infinity', 'nan', '1.0e0', '0e0', '0E-0', '1.5E+2', '1.5e-0', '9007199254740993',
	'9007199254740993.0', '1' . ('0' x 30), '0.' . ('1' x 40), ('1' x 70) . '.5', '-', '1-', '1e5e5',
	'0x10', '1_000', 'true', 'false', 'null', '"12"', '[]', '{}', '1.5 ', '3 ');
my @VALS = u8('null', 'true', 'false', 'True', 'nul', '[]', '{}', '[1]', '["a"]', '{"user_id":"x"}',
	'{"user_id":12}', '{"user_id":null}', '"x"', '""', '" "', '12', '-5', '1.5', '[null]', '[1,"#a"]',
	'"#A"', '{"user_id":"a","user_id":"b"}', '{"user_id":"a","user\u005fid":"b"}',
	'{"user_id":"a","x":1,"x":2}', '"\u0000"', '"a\u0000b"', '{"a":{"b":{"c":[1,[2,[3]]]}}}',
	'"2026-01-01T00:00:00Z"', '"2026-13-01T00:00:00Z"', '"original"', '"Original"', '"retweet\u0000"',
	'"re\u0074weet"', '"quote"', '"\ud83d\ude00"', '"\ud83d"', '"\ude00x"', '"' . ('é' x 300) . '"',
	'"' . ('x' x 5000) . '"', '"' . ('Ⱥ' x 100) . '"', '[' . join(',', map { "\"#t$_\"" } 0 .. 100) . ']',
	'[' . join(',', ('"#T"') x 100) . ']', '[' . join(',', map { "\"#x$_\"" } 0 .. 599) . ']',
	'[' . join(',', ('1') x 600) . ']', '{' . join(',', map { "\"k$_\":$_" } 0 .. 599) . '}');
my @ESC = u8('\u0000', '\ud800', '\udc00', '\ud83d\ude00', '\uD83D\uDE00', '\ud83d\u0041', '\ud83d\n',
	'\u00e9', '\u00E9', '\/', '\"', '\\\\', '\b', '\f', '\n', '\r', '\t', '\x41', '\u12', '\u12g4', '\\',
	'\u0041', '\u005f', '\uffff', '\ufffe', '\u0800', '\u07ff', '\u007f', '\u0080', '\ud7ff', '\ue000',
	'\udbff\udfff', '\ud800\udc00\ud800', "\x01", "\x1f", "\t", "\n", "\x7f", 'é', "\x{1F600}", '"',
	'\\\\u0041');
my @MWS = u8(' ', "\t", "\n", "\r", "\f", "\x0b", "\x{a0}", "\x{feff}");
my @KEYS = qw(tweet_id text created_at tweet_type language region hashtags mentions retweet_count
  like_count reply_count quote_count is_retweet is_reply is_quote has_media has_url sentiment_score
  engagement_score reach_estimate user user_id username display_name followers_count
  following_count verified location description original_tweet_id original_user
  reply_to_tweet_id reply_to_user quoted_tweet_id quoted_user quoted_text source);
my $KEY = qr/"(@{[ join '|', @KEYS ]})":/;

# [start, end, captured] of each match of $re in $s
sub matches
{
	my ($s, $re) = @_;
	my @m;
	push @m, [ $-[0], $+[0], $1 ] while $s =~ /$re/g;
	return @m;
}

sub key_variant
{
	my ($k) = @_;
	return pick($k, $k =~ s/_/\\u005f/r, "$k\\u0000x", uc($k), "$k ", '\u0074' . substr($k, 1),
		substr($k, 0, -1));
}

my @mutators = (
	sub {    # byte flips
		my $s = shift;
		substr($s, int(rand(length $s)), 1) = chr(pick(1 .. 127, 0xc3, 0xa9, 0x80, 0xff))
		  for 1 .. 1 + int(rand(3));
		return $s;
	},
	sub { substr($_[0], 0, int(rand(length($_[0]) + 1))) },    # truncation
	sub {    # an escape inserted anywhere
		my $s = shift;
		substr($s, int(rand(length($s) + 1)), 0) = pick(@ESC);
		return $s;
	},
	sub {    # an escape inserted into a string value
		my $s = shift;
		my @m = matches($s, qr/:"([^"\\]*)"/) or return $s;
		my $m = pick(@m);
		substr($s, $m->[0] + 2 + int(rand(length($m->[2]) + 1)), 0) = pick(@ESC);
		return $s;
	},
	sub {    # an odd number
		my $s = shift;
		my @m = matches($s, qr/(?<=:)(-?[0-9][0-9.eE+-]*)/) or return $s;
		my $m = pick(@m);
		substr($s, $m->[0], $m->[1] - $m->[0]) = pick(@NUMS);
		return $s;
	},
	sub {    # a key repeated (maybe escaped), before itself or after the next member
		my $s = shift;
		my @m = matches($s, $KEY) or return $s;
		my $m = pick(@m);
		my $ins = '"' . key_variant($m->[2]) . '":' . pick(@VALS, '"dup"', '1') . ',';
		if (rand() < 0.5) { substr($s, $m->[0], 0) = $ins; }
		else
		{
			my $c = index($s, ',', $m->[1]);
			substr($s, $c + 1, 0) = $ins if $c >= 0;
		}
		return $s;
	},
	sub {    # a value of another type
		my $s = shift;
		my @m = matches($s, $KEY) or return $s;
		my $m = pick(@m);
		my $rest = substr($s, $m->[1]);
		$rest =~ /,"[a-z_]+":|\}$|\}\}/ or return $s;
		return substr($s, 0, $m->[1]) . pick(@VALS, @NUMS) . substr($rest, $-[0]);
	},
	sub {    # a key renamed
		my $s = shift;
		my @m = matches($s, $KEY) or return $s;
		my $m = pick(@m);
		substr($s, $m->[0], $m->[1] - $m->[0]) = '"' . key_variant($m->[2]) . '":';
		return $s;
	},
	sub {    # whitespace, some of which JSON does not allow
		my $s = shift;
		for (1 .. 1 + int(rand(4)))
		{
			pos($s) = int(rand(length($s)));
			my $i = ($s =~ /[,:{}\[\]]/g ? $-[0] : 0) + int(rand(2));
			$i = length($s) if $i > length($s);
			substr($s, $i, 0) = join '', map { pick(@MWS) } 1 .. 1 + int(rand(3));
		}
		return $s;
	},
	sub {    # deep nesting
		my $s = shift;
		my @m = matches($s, $KEY) or return $s;
		my $m = pick(@m);
		my $d = 1 + int(rand(20));
		substr($s, $m->[1], 0) = ('[' x $d) . '1' . (']' x $d) . ',"zz":';
		return $s;
	},
	sub {    # the top level
		my $s = shift;
		return pick('', ' ', "[$s]", "${s}x", "$s ", "$s\n", "$s}", "$s,", " \t$s", u8("\x{feff}") . $s, "$s$s",
			'"x"', '1', 'null', '{}', '{"tweet_id":"a"}', substr($s, 0, -1) . ',}', $s =~ s/\{/{,/r,
			substr($s, 0, -1), "$s {}", "/*c*/$s", $s =~ s/:/ : /gr, $s =~ s/,/ , /gr);
	},
	sub {    # raw control characters and non-ASCII in the text
		my $s = shift;
		my $i = index($s, '"text":"');
		substr($s, $i < 0 ? 0 : $i + 8, 0) = u8 pick("\x01", "\x1f", "\t", "\n", "\r", "\x7f", 'É', 'ẞ',
			"\x{2028}", "\x{1F600}" x 300, 'a' x 1000, 'é' x 1001);
		return $s;
	},
	sub {    # tags
		my $s = shift;
		my $v = pick(@VALS[ -8 .. -1 ], u8('["#AI","#ai","# AI ","#","","  #ÉTÉ ","#été"]', '["@@x","@X"]',
			'["#' . ('a' x 280) . '"]', '["#' . ('a' x 281) . '"]', '["#' . ('Ⱥ' x 140) . '"]'));
		my $key = pick('hashtags', 'mentions');
		$s =~ s/"$key":\[[^\]]*\]/"$key":$v/;
		return $s;
	},
	sub {    # a large message: a long description, or a long unknown field
		my $s = shift;
		return $s if rand() < 0.9;
		my $n = pick(30_000, 65_000, 66_000, 70_000, rand() < 0.05 ? 1_100_000 : 100_000);
		if (rand() < 0.5)
		{
			my $i = index($s, '"description":"');
			substr($s, $i < 0 ? 0 : $i + 15, 0) = 'x' x $n;
		}
		else { substr($s, -1, 0) = ',"padding":"' . ('p' x $n) . '"'; }
		return $s;
	},
	sub {    # the referenced users
		my $s = shift;
		return substr($s, 0, -1) . ',"' . pick(qw(original_user quoted_user reply_to_user user)) . '":'
		  . pick(@VALS) . '}';
	},
	sub { $_[0] },    # unchanged
);

my @mutated;
my @template_bytes = u8(@templates);
for (1 .. $N_MUTATED)
{
	my $s = pick(@template_bytes);
	for (1 .. pick(1, 1, 1, 2, 3)) { $s = pick(@mutators)->($s) if $s ne ''; }
	$s = Encode::decode('UTF-8', $s, sub { '' });
	$s =~ tr/\0//d;    # text cannot hold NUL
	push @mutated, $s;
}

# --- known-bad messages and their reasons -------------------------------------------------
sub msg
{
	my ($id, $extra) = @_;
	return qq({"tweet_id":"$id","text":"t","created_at":"2026-05-01T10:15:00Z") . ($extra ? ",$extra" : '') . '}';
}
my @bad = (
	[ '{"tweet_id":"trunc","text":"cut off', 'invalid JSON: unexpected end of message at byte 35' ],
	[ '[{"tweet_id":"arr"}]', 'not a JSON object (got array)' ],
	[ '"just a string"', 'not a JSON object (got string)' ],
	[ '', 'empty message' ],
	[ "  \n ", 'empty message' ],
	[ '{"text":"no id","created_at":"2026-04-01T10:00:00Z"}', 'missing required field tweet_id' ],
	[ '{"tweet_id":"no-text","created_at":"2026-04-01T10:00:00Z"}', 'missing required field text' ],
	[ '{"tweet_id":"no-time","text":"x"}', 'missing required field created_at' ],
	[ msg('a', '"like_count":"5"'), 'like_count: expected integer, got string' ],
	[ msg('a', '"hashtags":["#a",7]'), 'hashtags[1]: expected string, got number' ],
	[ msg('a', '"user":"bob"'), 'user: expected object, got string' ],
	[ msg('a', '"sentiment_score":1.5'), 'sentiment_score: 1.5 is outside [-1, 1]' ],
	[ msg('a', '"reply_count":-1'), 'reply_count: negative (-1)' ],
	[ msg('a', '"like_count":2.5'), 'like_count: expected integer, got number' ],
	[ msg('a', '"like_count":2147483648.0'), 'like_count: out of range (2147483648)' ],
	[ msg('a', '"like_count":9223372036854775808'), 'like_count: out of range (9223372036854775808)' ],
	[ msg('a', '"quote_count":99999999999999999999999'), 'quote_count: out of range (18446744073709551615 or more)' ],
	[ msg('a', '"retweet_count":1e20'), 'retweet_count: out of range (1e+20)' ],
	[ msg('a', '"sentiment_score":5e-324'), 'sentiment_score: 5e-324 is subnormal (0 < |x| < 2.2250738585072014e-308)' ],
	[ msg('a', '"sentiment_score":1e309'), 'sentiment_score: not a finite number' ],
	[ msg('a', '"sentiment_score":NaN'), 'sentiment_score: not a finite number' ],
	[ msg('a', '"user":{"user_id":-5}'), 'user.user_id: negative (-5)' ],
	[ msg('a', '"user":{"user_id":18446744073709551616}'), 'user.user_id: out of range (18446744073709551615 or more)' ],
	[ msg('a', '"tweet_type":"thread"'), 'tweet_type: "thread" is not one of original, retweet, reply, quote' ],
	[ '{"tweet_id":"a","text":"x","created_at":"2026-02-30T10:00:00Z"}', 'created_at: "2026-02-30T10:00:00Z" is not an ISO 8601 timestamp' ],
	[ '{"tweet_id":"a","text":"a\u0000b","created_at":"2026-04-01T10:00:00Z"}', 'text: contains a NUL byte' ],
	[ '{"tweet_id":"surrogate","text":"\ud800","created_at":"2026-04-01T10:00:00Z"}', 'invalid JSON: unpaired UTF-16 surrogate escape at byte 32' ],
	[ msg('a', '"region":"' . ('r' x 65) . '"'), 'region: longer than 64 bytes (65)' ],
	[ msg('a', '"hashtags":["#' . ('Ⱥ' x 94) . '"]'), 'hashtags: longer than 280 bytes once lower-cased (282)' ],
	[ '{"tweet_id":"a","text":"' . ('é' x 1001) . '","created_at":"2026-04-01T10:00:00Z"}', 'text: longer than 1000 characters (1001)' ],
	[ msg('a', '"hashtags":[' . join(',', map { "\"#t$_\"" } 1 .. 101) . ']'), 'hashtags: more than 100 entries (101)' ],
	[ msg('a', '"pad":"' . ('p' x 1_048_576) . '"'), 'message larger than tweetlake.max_message_bytes (1048648 > 1048576)' ],
	[ '{"tweet_id":"trailing","text":"x","created_at":"2026-04-01T10:00:00Z"} extra', 'invalid JSON: unexpected character at byte 71' ],
	[ msg('deep', '"x":' . ('[' x 40) . (']' x 40)), 'invalid JSON: nesting too deep at byte 85' ],
	[ "{'tweet_id':'single-quote'}", 'invalid JSON: unexpected character at byte 12' ],
	[ '{"tweet_id":"dup-a","tweet\u005fid":"dup-b","text":"t","created_at":"2026-05-01T10:15:00Z"}', 'duplicate key tweet_id' ],
	[ '{"tweet_id":"dup-c","tweet_id\u0000x":"dup-d","text":"t","created_at":"2026-05-01T10:15:00Z"}', 'duplicate key tweet_id' ],
	[ msg('a', '"region":"a","re\u0067ion":"b"'), 'duplicate key region' ],
	[ msg('a', '"user":{"user_id":"u1","user_id":"u2"}'), 'duplicate key user.user_id' ],
	[ msg('a', '"reply_to_user":{"user_id":"u1","user\u005fid":"u2"}'), 'duplicate key reply_to_user.user_id' ],
	[ '{"tweet_id":123,"text":"t","created_at":"2026-05-01T10:15:00Z"}', 'tweet_id: expected string, got number' ],
	[ '{"tweet_id":"","text":"x","created_at":"2026-04-01T10:00:00Z"}', 'tweet_id: empty' ],
);

# --- into the database: one line per message: id, kind, id of its plain form, raw and the
#     expected reason, in COPY's text format -------------------------------------------
my @rows;
my %COPY_ESC = ('\\' => '\\\\', "\n" => '\n', "\r" => '\r', "\t" => '\t');
my $copy = sub { return defined $_[0] ? $_[0] =~ s/([\\\n\r\t])/$COPY_ESC{$1}/gr : '\N' };
my $id = 0;
push @rows, join("\t", ++$id, 'template', '\N', $copy->($_), '\N') for @templates;
for my $i (0 .. $#plain)
{
	push @rows, join("\t", ++$id, 'plain', '\N', $copy->($plain[$i]), '\N');
	push @rows, join("\t", ++$id, 'variant', $id - 1, $copy->($fancy[$i]), '\N');
}
push @rows, join("\t", ++$id, 'mutated', '\N', $copy->($_), '\N') for @mutated;
push @rows, join("\t", ++$id, 'bad', '\N', $copy->($_->[0]), $copy->($_->[1])) for @bad;
my $file = PostgreSQL::Test::Utils::tempdir . '/messages.tsv';
open(my $fh, '>:encoding(UTF-8)', $file) or die "$file: $!";
print $fh join("\n", @rows), "\n";
close $fh;
chmod 0644, $file;

$node->safe_psql('postgres', qq{
CREATE SCHEMA parse_test;
-- parse.c's counters of messages read by each way (in this backend); see the top of this file
CREATE FUNCTION parse_test.path_counts(OUT fast bigint, OUT json_c bigint)
    AS '\$libdir/tweetlake', 'tweetlake_parse_path_counts' LANGUAGE C;
CREATE TABLE parse_test.msgs (id int PRIMARY KEY, kind text NOT NULL, orig int, raw text NOT NULL, expect text);
COPY parse_test.msgs FROM '$file' WITH (ENCODING 'UTF8');
INSERT INTO parse_test.msgs
    SELECT $id + n, 'generated', NULL, t FROM tweetlake.generate_tweets($N_GENERATED, 4301) WITH ORDINALITY g(t, n);
CREATE TABLE parse_test.parsed (fast_path bool, id int, r tweetlake.parsed_tweet, PRIMARY KEY (fast_path, id));
CREATE TABLE parse_test.paths (fast_path bool, kind text, messages bigint, fast bigint, json_c bigint);
-- The columns in which two rows differ, with both values as JSON (so a tab shows as \\t).
CREATE FUNCTION parse_test.row_diff(a tweetlake.parsed_tweet, b tweetlake.parsed_tweet, la text, lb text)
RETURNS text LANGUAGE sql RETURN coalesce(
    (SELECT string_agg(format('  %s: %s %s, %s %s', x.key, la, x.value, lb, y.value), E'\\n' ORDER BY x.key)
     FROM jsonb_each(to_jsonb(a)) x JOIN jsonb_each(to_jsonb(b)) y USING (key)
     WHERE x.value IS DISTINCT FROM y.value),
    format('  %s %s\\n  %s %s', la, a, lb, b));
-- Parses every message with the switch as given, one kind at a time, and records how many
-- of each kind each way read (the counters, before and after, in this session).
CREATE FUNCTION parse_test.run(switch_on bool) RETURNS void LANGUAGE plpgsql AS \$\$
DECLARE
    k text;
    b record;
    a record;
    n bigint;
BEGIN
    PERFORM set_config('tweetlake.parse_fast_path', switch_on::text, true);
    PERFORM set_config('max_parallel_workers_per_gather', '0', true);  -- the counters are this backend's
    FOR k IN SELECT DISTINCT kind FROM parse_test.msgs ORDER BY 1 LOOP
        SELECT * INTO b FROM parse_test.path_counts();
        INSERT INTO parse_test.parsed
            SELECT switch_on, id, tweetlake.parse_tweet(raw) FROM parse_test.msgs WHERE kind = k;
        GET DIAGNOSTICS n = ROW_COUNT;
        SELECT * INTO a FROM parse_test.path_counts();
        INSERT INTO parse_test.paths VALUES (switch_on, k, n, a.fast - b.fast, a.json_c - b.json_c);
    END LOOP;
END \$\$;
});
my $total = $id + $N_GENERATED;
is(sql_value($node, 'SELECT count(*) FROM parse_test.msgs'), $total, "$total messages stored");
note(sql_value($node, "SELECT kind || ': ' || count(*) || ' messages, ' || sum(octet_length(raw)) || ' bytes, '
	|| count(*) FILTER (WHERE octet_length(raw) > 65536) || ' over 64 kB' FROM parse_test.msgs GROUP BY kind ORDER BY kind"));

# --- both modes -----------------------------------------------------------------------------
sql_value($node, 'SELECT parse_test.run(true)');
sql_value($node, 'SELECT parse_test.run(false)');

# The counters: per kind, "messages fast json_c" for each mode.
my %paths;
for (split /\n/, sql_value($node,
		"SELECT fast_path, kind, messages, fast, json_c FROM parse_test.paths ORDER BY kind, fast_path"))
{
	my ($on, $kind, @n) = split /\|/;
	$paths{ $on eq 't' ? 'on' : 'off' }{$kind} = \@n;
	note(sprintf('fast path %-3s %-9s %6d messages: %6d fast scan, %6d json-c',
			$on eq 't' ? 'on' : 'off', $kind, @n));
}
my %count = map { split /\|/ } split /\n/, sql_value($node, 'SELECT kind, count(*) FROM parse_test.msgs GROUP BY kind');
for my $kind (sort keys %count)
{
	is_deeply($paths{off}{$kind}, [ $count{$kind}, 0, $count{$kind} ],
		"switch off: all $count{$kind} $kind messages read by json-c, none by the fast scan");
	my ($n, $fast, $json_c) = @{ $paths{on}{$kind} // [ 0, 0, 0 ] };
	is($fast + $json_c, $count{$kind}, "switch on: each $kind message read one way ($fast + $json_c)");
}
for my $kind (qw(generated template plain variant))
{
	is($paths{on}{$kind}[1], $count{$kind}, "switch on: every $kind message read by the fast scan");
}
my ($m, $m_fast, $m_json) = @{ $paths{on}{mutated} };
ok($m_fast >= 0.2 * $m && $m_json >= 0.2 * $m,
	"switch on: the mutated messages go both ways ($m_fast fast scan, $m_json json-c of $m)");
my ($all_fast, $all_json) = (0, 0);
$all_fast += $_->[1], $all_json += $_->[2] for values %{ $paths{on} };
ok($all_fast >= 0.6 * $total && $all_json >= 0.15 * $total,
	"switch on: $all_fast of $total messages by the fast scan, $all_json by json-c");

# --- the same rows ----------------------------------------------------------------------------
my $diff_sql = "FROM parse_test.msgs m JOIN parse_test.parsed f ON f.id = m.id AND f.fast_path
	JOIN parse_test.parsed j ON j.id = m.id AND NOT j.fast_path WHERE f.r::text IS DISTINCT FROM j.r::text";
my $ndiff = sql_value($node, "SELECT count(*) $diff_sql");
is($ndiff, '0', "every one of the $total rows is the same with and without the fast path")
  or diag("$ndiff differ; the first ones:\n" . sql_value($node,
	"SELECT format(E'%s %s: raw %s\\n%s', m.kind, m.id, left(to_json(m.raw)::text, 300),
	    parse_test.row_diff(f.r, j.r, 'fast scan', 'json-c')) $diff_sql ORDER BY m.id LIMIT 5"));
is(sql_value($node, "SELECT count(*) FROM parse_test.parsed WHERE fast_path"), $total, 'one row per message, fast path on');
is(sql_value($node, "SELECT count(*) FROM parse_test.parsed WHERE NOT fast_path"), $total, 'one row per message, fast path off');

# tweet_id_of (bronze.tweets.tweet_id) is the parsed tweet_id: of the row, or of the dead letter
for my $mode ('', 'NOT ')
{
	my $label = $mode ? 'off' : 'on';
	my $where = "FROM parse_test.msgs m JOIN parse_test.parsed p ON p.id = m.id AND ${mode}p.fast_path
		WHERE (p.r).tweet_id IS DISTINCT FROM tweetlake.tweet_id_of(m.raw)";
	my ($bad_ok, $bad_err) = split /\|/, sql_value($node,
		"SELECT count(*) FILTER (WHERE (p.r).error IS NULL), count(*) FILTER (WHERE (p.r).error IS NOT NULL) $where");
	is("$bad_ok|$bad_err", '0|0', "fast path $label: tweet_id_of equals the parsed tweet_id (valid rows and dead letters)")
	  or diag(sql_value($node, "SELECT format('%s %s: tweet_id_of %s, parsed %s (%s): %s', m.kind, m.id,
	      to_json(tweetlake.tweet_id_of(m.raw)), to_json((p.r).tweet_id), coalesce((p.r).error, 'valid'),
	      left(to_json(m.raw)::text, 300))
	      $where ORDER BY m.id LIMIT 5"));
}

# --- values a user sees ---------------------------------------------------------------------
my %valid = map { split /\|/ } split /\n/, sql_value($node,
	"SELECT m.kind || CASE WHEN p.fast_path THEN ':on' ELSE ':off' END, count(*) FILTER (WHERE (p.r).error IS NULL)
	 FROM parse_test.msgs m JOIN parse_test.parsed p USING (id) GROUP BY 1");
for my $mode (qw(on off))
{
	is($valid{"$_:$mode"}, $count{$_}, "fast path $mode: all $count{$_} $_ messages are valid")
	  for qw(generated template plain variant);
	is($valid{"bad:$mode"} // 0, 0, "fast path $mode: no known-bad message is valid");
}
note("mutated messages valid: $valid{'mutated:on'} of $count{mutated}");
ok($valid{'mutated:on'} > 0.1 * $count{mutated} && $valid{'mutated:on'} < 0.9 * $count{mutated},
	"the mutated messages are partly valid, partly dead letters ($valid{'mutated:on'} of $count{mutated} valid)");

# each re-serialized message gives the row of its plain form
my $respelled = 'FROM parse_test.msgs v JOIN parse_test.parsed pv ON pv.id = v.id
	JOIN parse_test.parsed pp ON pp.id = v.orig AND pp.fast_path = pv.fast_path
	WHERE v.kind = \'variant\' AND pv.r::text IS DISTINCT FROM pp.r::text';
is(sql_value($node, "SELECT count(*) $respelled"), '0', 'every re-serialized message gives the row of its plain form')
  or diag(sql_value($node, "SELECT format(E'%s (fast path %s): %s\\n%s', v.id, CASE WHEN pv.fast_path THEN 'on' ELSE 'off' END,
	left(to_json(v.raw)::text, 300), parse_test.row_diff(pv.r, pp.r, 'gives', 'plain form gives'))
	$respelled ORDER BY v.id, pv.fast_path LIMIT 5"));

# the known-bad messages: their exact reasons, in both modes
my $reasons = sql_value($node, "SELECT format('%s: expected %L, fast path on %L, off %L', m.id, m.expect, (f.r).error, (j.r).error)
	FROM parse_test.msgs m JOIN parse_test.parsed f ON f.id = m.id AND f.fast_path
	JOIN parse_test.parsed j ON j.id = m.id AND NOT j.fast_path
	WHERE m.kind = 'bad' AND ((f.r).error IS DISTINCT FROM m.expect OR (j.r).error IS DISTINCT FROM m.expect) ORDER BY m.id");
is($reasons, '', scalar(@bad) . ' known-bad messages give their exact reasons in both modes');

$node->stop('fast');
done_testing();
