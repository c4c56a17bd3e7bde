# 002_doc_graph.pl: the transition graph drawn in the documentation is the
# one the extension ships.
#
# doc/workflow.md shows the default graph as a Mermaid stateDiagram-v2.
# Rather than drawing it by hand, it is meant to be the output of
# payout.graph_mermaid() on a fresh install, so that the picture cannot
# drift from payout.default_transition.  This test compares every
# stateDiagram-v2 block of README.md and doc/*.md with it and shows a line
# diff when they differ.

use strict;
use warnings;

use File::Spec;
use FindBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

# The pages at the top of the source tree: two levels above this file
# (test/t), or in TESTDIR, where the tests run from.
my @pages;
foreach my $dir (File::Spec->catdir($FindBin::RealBin, '..', '..'),
	defined $ENV{TESTDIR} ? ($ENV{TESTDIR}) : ())
{
	my $readme = File::Spec->catfile($dir, 'README.md');
	if (-f $readme)
	{
		@pages = ($readme, sort glob(File::Spec->catfile($dir, 'doc', '*.md')));
		last;
	}
}
ok(@pages, 'README.md found')
  or BAIL_OUT('README.md not found next to test/ nor in TESTDIR');

# state_diagrams($text): the bodies of the ```mermaid fenced blocks whose
# first line is stateDiagram-v2.
sub state_diagrams
{
	my ($text) = @_;
	my @lines = split /\n/, $text, -1;
	my @diagrams;
	my $i = 0;
	while ($i < @lines)
	{
		if ($lines[$i] =~ /^ {0,3}```mermaid\s*$/)
		{
			my @body;
			$i++;
			while ($i < @lines && $lines[$i] !~ /^ {0,3}```\s*$/)
			{
				push @body, $lines[$i];
				$i++;
			}
			push @diagrams, join("\n", @body) . "\n"
			  if @body && $body[0] =~ /^\s*stateDiagram-v2\s*$/;
		}
		$i++;
	}
	return @diagrams;
}

# trim_newline($s): $s without one trailing newline.
sub trim_newline
{
	my ($s) = @_;
	$s =~ s/\n\z//;
	return $s;
}

# line_diff($want, $got): the lines of two texts compared, "-" for a line
# only in $want, "+" for one only in $got, " " for one in both, from a
# longest common subsequence.
sub line_diff
{
	my ($want, $got) = @_;
	my @a = split /\n/, $want, -1;
	my @b = split /\n/, $got, -1;
	my @lcs;
	for (my $i = @a; $i >= 0; $i--)
	{
		for (my $j = @b; $j >= 0; $j--)
		{
			$lcs[$i][$j] =
				($i == @a || $j == @b) ? 0
			  : ($a[$i] eq $b[$j]) ? $lcs[ $i + 1 ][ $j + 1 ] + 1
			  : $lcs[ $i + 1 ][$j] >= $lcs[$i][ $j + 1 ] ? $lcs[ $i + 1 ][$j]
			  :                                             $lcs[$i][ $j + 1 ];
		}
	}
	my ($i, $j) = (0, 0);
	my @out;
	while ($i < @a || $j < @b)
	{
		if ($i < @a && $j < @b && $a[$i] eq $b[$j])
		{
			push @out, "  $a[$i]";
			$i++;
			$j++;
		}
		elsif ($j < @b && ($i == @a || $lcs[$i][ $j + 1 ] >= $lcs[ $i + 1 ][$j]))
		{
			push @out, "+ $b[$j]";
			$j++;
		}
		else
		{
			push @out, "- $a[$i]";
			$i++;
		}
	}
	return join("\n", @out) . "\n";
}

my $node = PostgreSQL::Test::Cluster->new('main');
$node->init;
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION payout');

my $function = $node->safe_psql('postgres', 'SELECT payout.graph_mermaid()');
like($function, qr/\AstateDiagram-v2\n/,
	'payout.graph_mermaid() draws a stateDiagram-v2');

my @found;
foreach my $page (@pages)
{
	my ($name) = $page =~ m{((?:doc/)?[^/]+)$};
	push @found, map { [ $name, $_ ] } state_diagrams(slurp_file($page));
}
ok(@found, 'the pages have a ```mermaid block that starts with stateDiagram-v2');

my $want = trim_newline($function);
foreach my $found (@found)
{
	my ($name, $diagram) = @$found;
	my $got = trim_newline($diagram);
	ok($got eq $want, "${name}'s stateDiagram-v2 is payout.graph_mermaid()'s output")
	  or diag(
		"lines marked - are only in payout.graph_mermaid(), + only in $name:\n"
		  . line_diff($want, $got));
}

$node->stop;

done_testing();
