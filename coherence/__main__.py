from coherence.cli import entry

entry()
